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
}

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** Print debug lines. @default false */
  debug?: boolean;
  /**
   * URLs whose credentials must never be printed (the broker URLs): wherever one of them, or its
   * `user:password@` part, appears in a value, the password becomes `***` (see `urlRedactor`).
   */
  urls?: readonly string[];
  /** Where finished lines go. @default stderr */
  write?: (line: string) => void;
}

/** Longest value printed, in UTF-16 units; longer ones are cut and say how long they were. */
export const MAX_LOG_VALUE_CHARS = 2048;

const encoder = new TextEncoder();

/** Creates a logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const redact = urlRedactor(options.urls ?? []);
  const write = options.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line)));
  const debugEnabled = options.debug ?? false;
  const emit = (level: Level, event: string, fields?: Fields) => {
    let line = `${new Date().toISOString()} ${level} ${formatValue(event)}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        line += ` ${formatValue(key)}=${formatValue(redact(String(value)))}`;
      }
    }
    write(line + "\n");
  };
  return {
    debug: (event, fields) => {
      if (debugEnabled) emit("debug", event, fields);
    },
    info: (event, fields) => emit("info", event, fields),
    warn: (event, fields) => emit("warn", event, fields),
    error: (event, fields) => emit("error", event, fields),
  };
}

/**
 * Characters never written raw: C0 and C1 controls (terminal escapes, BEL, line breaks), DEL,
 * the Unicode line separators and the bidirectional overrides.
 */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// deno-lint-ignore no-control-regex
const NEEDS_QUOTES = /[\s"=\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/**
 * A value as it appears in a line: bare when it is plain, else JSON-quoted with every unsafe
 * character escaped as `\uXXXX`, so that one event is always one line of inert text.
 */
export function formatValue(raw: string): string {
  const s = raw.length > MAX_LOG_VALUE_CHARS
    ? `${raw.slice(0, MAX_LOG_VALUE_CHARS)}...(${raw.length} chars)`
    : raw;
  if (s !== "" && !NEEDS_QUOTES.test(s)) return s;
  return JSON.stringify(s).replace(
    UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Masks the credentials of the given URLs by their structure: the URL as given, as parsed
 * (`URL.href`), and its `user:password@` part (raw and percent-decoded) become the same with
 * `***` as password. The password alone is never searched for: a short or common password must
 * not garble unrelated text, nor let anyone confirm a guess by naming a container after it.
 * URLs without a password, or that do not parse, add nothing.
 */
export function urlRedactor(urls: readonly string[]): (text: string) => string {
  const pairs: [string, string][] = [];
  for (const raw of urls) {
    for (const pair of credentialForms(raw.trim())) pairs.push(pair);
  }
  // Longest first: a whole URL before its userinfo.
  pairs.sort((a, b) => b[0].length - a[0].length);
  if (pairs.length === 0) return (text) => text;
  return (text) => {
    if (!text.includes("@")) return text;
    for (const [secret, masked] of pairs) text = text.replaceAll(secret, masked);
    return text;
  };
}

function credentialForms(raw: string): [string, string][] {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return [];
  }
  if (url.password === "") return [];
  const forms: [string, string][] = [];
  const masked = new URL(raw);
  masked.password = "***";
  forms.push([raw, raw === url.href ? masked.href : maskUserinfo(raw, url.username)]);
  forms.push([url.href, masked.href]);
  const userinfo = `${url.username}:${url.password}@`;
  forms.push([userinfo, `${url.username}:***@`]);
  const decoded = safeDecode(url.username, url.password);
  if (decoded) forms.push([`${decoded[0]}:${decoded[1]}@`, `${decoded[0]}:***@`]);
  return forms.filter(([secret]) => secret.includes("@"));
}

/** `raw` with the password of its userinfo replaced, the rest kept as written. */
function maskUserinfo(raw: string, username: string): string {
  const start = raw.indexOf("//") + 2;
  const end = raw.slice(start).search(/[/?#]|$/) + start;
  const at = raw.lastIndexOf("@", end);
  if (start < 2 || at < start) return raw;
  return `${raw.slice(0, start)}${username}:***${raw.slice(at)}`;
}

function safeDecode(user: string, password: string): [string, string] | undefined {
  try {
    return [decodeURIComponent(user), decodeURIComponent(password)];
  } catch {
    return undefined;
  }
}
