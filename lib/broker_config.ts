/**
 * Where the brokers are and how to reach them: the URL list (from the environment or from a
 * credentials file) and the TLS material for `amqps://`. Read once at start; the permission set
 * and the daemon resolve the list the same way, here.
 *
 * Sources of the URL list, exactly one of: `RABBITMQ_URL`, `RABBITMQ_URLS`, `RABBITMQ_URL_FILE`;
 * with none of them set, systemd's `$CREDENTIALS_DIRECTORY/rabbitmq-url` (`LoadCredential=`).
 * Each holds one URL or several, comma-separated (a comma inside a password is written `%2C`).
 * @module
 */
import { ConfigError } from "./errors.ts";

/** The systemd credential (`LoadCredential=rabbitmq-url:...`) read from `$CREDENTIALS_DIRECTORY`. */
export const CREDENTIAL_NAME = "rabbitmq-url";

/** The variables that can hold the URL list, in the order they are documented. */
export const URL_VARIABLES = ["RABBITMQ_URL", "RABBITMQ_URLS", "RABBITMQ_URL_FILE"] as const;

/** The variables naming TLS files. */
export const TLS_FILE_VARIABLES = [
  "RABBITMQ_CA_FILE",
  "RABBITMQ_CERT_FILE",
  "RABBITMQ_KEY_FILE",
] as const;

/** Reads a text file; `Deno.readTextFileSync` in the daemon. Throws when it cannot. */
export type TextFileReader = (path: string) => string;

/** Reads an environment variable. */
type Env = (name: string) => string | undefined;

/** A broker endpoint as the permission set and the logs need it. */
export interface BrokerEndpoint {
  /** `amqp` or `amqps`. */
  protocol: "amqp" | "amqps";
  /** Host name or address. */
  host: string;
  /** Port, defaulted by protocol. */
  port: number;
}

/** PEM text for `amqps://` connections; unset fields use the defaults (system CAs, no cert). */
export interface TlsMaterial {
  /** CA certificates trusted instead of the system's (`RABBITMQ_CA_FILE`). */
  readonly ca?: string;
  /** Client certificate chain (`RABBITMQ_CERT_FILE`). */
  readonly cert?: string;
  /** Its private key (`RABBITMQ_KEY_FILE`). */
  readonly key?: string;
}

/** The brokers to use, in order, and how to reach them. */
export interface BrokerConfig {
  /** One URL or more, each with its credentials: log them only through `redactUrl`. */
  readonly urls: readonly string[];
  /** TLS material for the `amqps://` ones. */
  readonly tls: TlsMaterial;
  /** The variable the URLs came from (for error messages). */
  readonly variable: string;
}

/** The URL list and the variable it came from (for error messages). */
export interface UrlList {
  /** The URLs in order, each checked by `parseBrokerUrl`. */
  urls: string[];
  /** The variable at fault when something about them is wrong. */
  variable: string;
}

/**
 * Resolves the URL list: from the one variable of `URL_VARIABLES` that is set, else from
 * `$CREDENTIALS_DIRECTORY/rabbitmq-url` when that file exists. Throws `ConfigError` naming the
 * variable when none is set, several are, a file is missing or empty, or a URL is bad.
 */
export function resolveUrls(env: Env, readFile: TextFileReader): UrlList {
  const set = URL_VARIABLES.filter((name) => nonEmpty(env(name)) !== undefined);
  if (set.length > 1) {
    throw new ConfigError(set[1], `set only one of ${set.join(", ")}`);
  }
  const variable = set[0];
  if (variable === "RABBITMQ_URL_FILE") {
    return splitUrls(readSecretFile(variable, nonEmpty(env(variable))!, readFile), variable);
  }
  if (variable !== undefined) return splitUrls(nonEmpty(env(variable))!, variable);
  const dir = nonEmpty(env("CREDENTIALS_DIRECTORY"));
  if (dir !== undefined) {
    const path = `${dir.replace(/\/+$/, "")}/${CREDENTIAL_NAME}`;
    return splitUrls(
      readSecretFile("CREDENTIALS_DIRECTORY", path, readFile),
      "CREDENTIALS_DIRECTORY",
    );
  }
  throw new ConfigError(
    "RABBITMQ_URL",
    "is required (e.g. amqp://user:pass@host:5672/vhost), or RABBITMQ_URLS, RABBITMQ_URL_FILE, " +
      `or a systemd credential ${CREDENTIAL_NAME}`,
  );
}

/** Resolves the URL list and reads the TLS files that are set; throws `ConfigError`. */
export function loadBrokerConfig(env: Env, readFile: TextFileReader): BrokerConfig {
  const { urls, variable } = resolveUrls(env, readFile);
  const [ca, cert, key] = TLS_FILE_VARIABLES.map((name) => {
    const path = nonEmpty(env(name));
    return path === undefined ? undefined : readPem(name, path, readFile);
  });
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(
      cert === undefined ? "RABBITMQ_CERT_FILE" : "RABBITMQ_KEY_FILE",
      "must be set together with " +
        (cert === undefined ? "RABBITMQ_KEY_FILE" : "RABBITMQ_CERT_FILE"),
    );
  }
  const tls: TlsMaterial = Object.freeze({ ca, cert, key });
  return Object.freeze({ urls: Object.freeze(urls), tls, variable });
}

/**
 * Parses one broker URL; throws `ConfigError` naming `variable` when it is not an amqp(s) URL
 * with a host, or an `amqps://` URL to an IP address (TLS checks the certificate against a
 * host name). The message never repeats the URL: it may hold a password.
 */
export function parseBrokerUrl(raw: string, variable = "RABBITMQ_URL"): BrokerEndpoint {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new ConfigError(variable, "is not a valid URL", { cause: err });
  }
  const protocol = url.protocol.replace(/:$/, "");
  if (protocol !== "amqp" && protocol !== "amqps") {
    throw new ConfigError(variable, `must start with amqp:// or amqps://, got ${protocol}://`);
  }
  if (url.hostname === "") throw new ConfigError(variable, "has no host");
  if (protocol === "amqps" && isIpLiteral(url.hostname)) {
    throw new ConfigError(
      variable,
      `amqps:// needs the broker's host name, not the address ${url.hostname} ` +
        "(the certificate is checked against the name)",
    );
  }
  // amqplib decodes these parts: a stray `%` would fail there, after every retry, not here.
  const parts = { "user name": url.username, password: url.password, vhost: url.pathname };
  for (const [part, value] of Object.entries(parts)) {
    try {
      decodeURIComponent(value);
    } catch {
      throw new ConfigError(
        variable,
        `has a malformed percent-encoding in its ${part} (write a literal % as %25)`,
      );
    }
  }
  const port = url.port === "" ? (protocol === "amqps" ? 5671 : 5672) : Number(url.port);
  return { protocol, host: url.hostname, port };
}

/**
 * Throws `ConfigError` when the permission set does not reach every broker of `urls` (a binary
 * built for other hosts): better one clear line at start than a refused attempt forever.
 */
export function assertBrokersPermitted({ urls, variable }: BrokerConfig): void {
  for (const url of urls) {
    const endpoint = parseBrokerUrl(url, variable);
    const host = netAddress(endpoint);
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
      throw new ConfigError(
        variable,
        `the permission set does not reach ${host}; build or start karotten with the brokers ` +
          "it will use (see README, Deployment)",
      );
    }
  }
}

/** `host:port` as Deno's `--allow-net` takes it (IPv6 in brackets). */
export function netAddress({ host, port }: { host: string; port: number }): string {
  return `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}

function splitUrls(raw: string, variable: string): UrlList {
  const urls = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (urls.length === 0) throw new ConfigError(variable, "holds no URL");
  urls.forEach((url, i) => {
    try {
      parseBrokerUrl(url, variable);
    } catch (err) {
      if (!(err instanceof ConfigError) || urls.length === 1) throw err;
      const detail = err.message.slice(variable.length + 2);
      throw new ConfigError(variable, `URL ${i + 1} of ${urls.length} ${detail}`, { cause: err });
    }
  });
  return { urls, variable };
}

/** The trimmed content of a file holding URLs; missing, unreadable or empty -> `ConfigError`. */
function readSecretFile(variable: string, path: string, readFile: TextFileReader): string {
  const text = readText(variable, path, readFile).trim();
  if (text === "") throw new ConfigError(variable, `file ${path} is empty`);
  return text;
}

function readPem(variable: string, path: string, readFile: TextFileReader): string {
  const text = readText(variable, path, readFile);
  if (!text.includes("-----BEGIN ")) {
    throw new ConfigError(variable, `file ${path} holds no PEM block`);
  }
  return text;
}

function readText(variable: string, path: string, readFile: TextFileReader): string {
  try {
    return readFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "does not exist"
      : err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied
      ? "is not readable with the permissions given"
      : `cannot be read (${err instanceof Error ? err.name : "error"})`;
    throw new ConfigError(variable, `file ${path} ${why}`, { cause: err });
  }
}

function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(hostname);
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === "" ? undefined : t;
}
