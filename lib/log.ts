/**
 * A one-line, key=value logger to stderr that never prints a registered secret.
 *
 * Line format: `<ISO time> <level> <event> key=value ...`; values with spaces, quotes or `=`
 * are JSON-quoted. Events are short snake_case names (`attached`, `amqp_connected`, ...).
 * @module
 */

/** Severity, lowest first. */
export type Level = "debug" | "info" | "warn" | "error";

/** Field values a log line can carry. */
export type FieldValue = string | number | boolean | bigint | undefined;

/** Structured fields of one log line. */
export type Fields = Record<string, FieldValue>;

/** The logger every module receives. */
export interface Logger {
  /** Only printed with `DEBUG` set. */
  debug(event: string, fields?: Fields): void;
  /** Normal operation. */
  info(event: string, fields?: Fields): void;
  /** Something went wrong and karotten carries on. */
  warn(event: string, fields?: Fields): void;
  /** Something failed that an operator must look at. */
  error(event: string, fields?: Fields): void;
  /** True when debug lines are printed (to skip building them otherwise). */
  readonly debugEnabled: boolean;
}

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** Print debug lines. @default false */
  debug?: boolean;
  /** Strings replaced by `***` wherever they appear (the broker password). */
  secrets?: readonly string[];
  /** Where finished lines go. @default stderr */
  write?: (line: string) => void;
}

const encoder = new TextEncoder();

/** Creates a logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const secrets = (options.secrets ?? []).filter((s) => s.length > 0);
  const write = options.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line)));
  const debugEnabled = options.debug ?? false;
  const emit = (level: Level, event: string, fields?: Fields) => {
    let line = `${new Date().toISOString()} ${level} ${event}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        line += ` ${key}=${formatValue(value)}`;
      }
    }
    for (const secret of secrets) line = line.replaceAll(secret, "***");
    write(line + "\n");
  };
  return {
    debugEnabled,
    debug: (event, fields) => {
      if (debugEnabled) emit("debug", event, fields);
    },
    info: (event, fields) => emit("info", event, fields),
    warn: (event, fields) => emit("warn", event, fields),
    error: (event, fields) => emit("error", event, fields),
  };
}

function formatValue(value: Exclude<FieldValue, undefined>): string {
  const s = String(value);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/** The secrets of a broker URL: its password, raw and percent-decoded. */
export function urlSecrets(raw: string): string[] {
  try {
    const url = new URL(raw);
    if (url.password === "") return [];
    return [...new Set([url.password, decodeURIComponent(url.password)])];
  } catch {
    return [];
  }
}
