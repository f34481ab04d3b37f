import assert from "node:assert/strict";
import {
  loadBrokerConfig,
  parseBrokerUrl,
  resolveUrls,
  type TextFileReader,
} from "../lib/broker_config.ts";
import { loadConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { permissionFlags } from "../lib/permissions.ts";
import { createLogger } from "../lib/log.ts";
import { redactUrl } from "../lib/config.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

/** Files by path; a missing one throws `NotFound` like `Deno.readTextFileSync`. */
function files(map: Record<string, string>): TextFileReader {
  return (path) => {
    if (!(path in map)) throw new Deno.errors.NotFound(`no such file: ${path}`);
    return map[path];
  };
}
const NO_FILES = files({});

/** Asserts that `fn` throws a `ConfigError` naming `variable` and not containing `secret`. */
function assertConfigError(fn: () => unknown, variable: string, secret?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.variable, variable, err.message);
    if (secret !== undefined) assert.ok(!err.message.includes(secret), err.message);
    return true;
  });
}

Deno.test("resolveUrls splits a comma-separated list from any of the URL variables", () => {
  const list = "amqp://u:p1@a:5672/, amqps://u:p2@b.example/vh ,";
  for (const name of ["RABBITMQ_URL", "RABBITMQ_URLS"]) {
    assert.deepEqual(resolveUrls(env({ [name]: list }), NO_FILES), {
      urls: ["amqp://u:p1@a:5672/", "amqps://u:p2@b.example/vh"],
      variable: name,
    });
  }
  const fromFile = resolveUrls(
    env({ RABBITMQ_URL_FILE: "/run/k/url" }),
    files({ "/run/k/url": `${list}\n` }),
  );
  assert.deepEqual(fromFile.urls, ["amqp://u:p1@a:5672/", "amqps://u:p2@b.example/vh"]);
});

Deno.test("resolveUrls reads the systemd credential only when no URL variable is set", () => {
  const creds = files({ "/run/credentials/k.service/rabbitmq-url": "amqp://u:p@c\n" });
  const dir = { CREDENTIALS_DIRECTORY: "/run/credentials/k.service" };
  assert.deepEqual(resolveUrls(env(dir), creds).urls, ["amqp://u:p@c"]);
  // Hosts given at build time beside the directory the secret will be in at run time.
  assert.deepEqual(
    resolveUrls(env({ ...dir, RABBITMQ_URLS: "amqps://a,amqps://b" }), NO_FILES).urls,
    ["amqps://a", "amqps://b"],
  );
});

Deno.test("resolveUrls names the variable when the list is missing, doubled, empty or bad", () => {
  assertConfigError(() => resolveUrls(env({}), NO_FILES), "RABBITMQ_URL");
  assertConfigError(
    () => resolveUrls(env({ RABBITMQ_URL: "amqp://a", RABBITMQ_URL_FILE: "/f" }), NO_FILES),
    "RABBITMQ_URL_FILE",
  );
  assertConfigError(
    () => resolveUrls(env({ RABBITMQ_URL_FILE: "/f" }), NO_FILES),
    "RABBITMQ_URL_FILE",
  );
  assertConfigError(
    () => resolveUrls(env({ RABBITMQ_URL_FILE: "/f" }), files({ "/f": " \n" })),
    "RABBITMQ_URL_FILE",
  );
  assertConfigError(
    () => resolveUrls(env({ CREDENTIALS_DIRECTORY: "/run/c" }), NO_FILES),
    "CREDENTIALS_DIRECTORY",
  );
  assertConfigError(
    () =>
      resolveUrls(env({ CREDENTIALS_DIRECTORY: "/run/c" }), files({ "/run/c/rabbitmq-url": "" })),
    "CREDENTIALS_DIRECTORY",
  );
  assertConfigError(() => resolveUrls(env({ RABBITMQ_URLS: " , " }), NO_FILES), "RABBITMQ_URLS");
  // A raw comma in a password splits the URL: the error says which one, never the password.
  assertConfigError(
    () => resolveUrls(env({ RABBITMQ_URLS: "amqp://u:pa,ss@h1,amqp://h2" }), NO_FILES),
    "RABBITMQ_URLS",
    "pa",
  );
  assertConfigError(
    () => resolveUrls(env({ RABBITMQ_URL: "amqp://a,http://u:topsecret@b" }), NO_FILES),
    "RABBITMQ_URL",
    "topsecret",
  );
});

Deno.test("parseBrokerUrl defaults the port by protocol and wants a host name for amqps", () => {
  assert.deepEqual(parseBrokerUrl("amqp://h"), { protocol: "amqp", host: "h", port: 5672 });
  assert.deepEqual(parseBrokerUrl("amqps://h"), { protocol: "amqps", host: "h", port: 5671 });
  assertConfigError(() => parseBrokerUrl("amqps://u:p@10.0.0.1:5671"), "RABBITMQ_URL", "u:p");
  assertConfigError(() => parseBrokerUrl("amqps://[::1]:5671", "RABBITMQ_URLS"), "RABBITMQ_URLS");
});

Deno.test("loadBrokerConfig reads the TLS files that are set, once", () => {
  const pem = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
  const read: string[] = [];
  const reader: TextFileReader = (path) => {
    read.push(path);
    return files({ "/ca": pem("CERTIFICATE"), "/c": pem("CERTIFICATE"), "/k": pem("KEY") })(path);
  };
  const c = loadBrokerConfig(
    env({
      RABBITMQ_URL: "amqps://h",
      RABBITMQ_CA_FILE: "/ca",
      RABBITMQ_CERT_FILE: "/c",
      RABBITMQ_KEY_FILE: "/k",
    }),
    reader,
  );
  assert.deepEqual(c.tls, { ca: pem("CERTIFICATE"), cert: pem("CERTIFICATE"), key: pem("KEY") });
  assert.deepEqual(read, ["/ca", "/c", "/k"]);
  assert.deepEqual(loadBrokerConfig(env({ RABBITMQ_URL: "amqps://h" }), NO_FILES).tls, {
    ca: undefined,
    cert: undefined,
    key: undefined,
  });
  assertConfigError(
    () => loadBrokerConfig(env({ RABBITMQ_URL: "amqps://h", RABBITMQ_CA_FILE: "/nope" }), NO_FILES),
    "RABBITMQ_CA_FILE",
  );
  assertConfigError(
    () =>
      loadBrokerConfig(
        env({ RABBITMQ_URL: "amqps://h", RABBITMQ_CA_FILE: "/ca" }),
        files({ "/ca": "not a certificate" }),
      ),
    "RABBITMQ_CA_FILE",
  );
  assertConfigError(
    () =>
      loadBrokerConfig(
        env({ RABBITMQ_URL: "amqps://h", RABBITMQ_CERT_FILE: "/c" }),
        files({ "/c": pem("CERTIFICATE") }),
      ),
    "RABBITMQ_KEY_FILE",
  );
  assertConfigError(() => loadConfig(env({ RABBITMQ_URL_FILE: "/missing" })), "RABBITMQ_URL_FILE");
});

Deno.test("permissionFlags grants every broker's host:port and reads only the files set", () => {
  const flags = permissionFlags(
    env({ RABBITMQ_URLS: "amqps://a.example,amqp://u:p@10.0.0.2:5673,amqps://a.example:5671" }),
    { readFile: NO_FILES },
  );
  assert.ok(
    flags.includes("--allow-net=unix:/var/run/docker.sock,a.example:5671,10.0.0.2:5673"),
    flags.join(" "),
  );
  assert.ok(flags.includes("--allow-read=/var/run/docker.sock"));
  const all = permissionFlags(
    env({
      RABBITMQ_URL_FILE: "/etc/k/url",
      RABBITMQ_CA_FILE: "/etc/k/ca.pem",
      RABBITMQ_CERT_FILE: "/etc/k/c.pem",
      RABBITMQ_KEY_FILE: "/etc/k/c.key",
      CREDENTIALS_DIRECTORY: "/run/credentials/k.service",
    }),
    { readFile: files({ "/etc/k/url": "amqps://u:p@b1:5671,amqps://u:p@b2:5671" }) },
  );
  assert.ok(all.includes("--allow-net=unix:/var/run/docker.sock,b1:5671,b2:5671"));
  assert.ok(all.includes(
    "--allow-read=/var/run/docker.sock,/etc/k/url,/run/credentials/k.service,/etc/k/ca.pem," +
      "/etc/k/c.pem,/etc/k/c.key",
  ));
  assert.ok(all.some((f) => /^--allow-env=.*CREDENTIALS_DIRECTORY/.test(f)));
  // An unreadable URL file (a build machine without the secret) grants no broker.
  const unreadable = permissionFlags(env({ RABBITMQ_URL_FILE: "/etc/k/url" }), {
    readFile: NO_FILES,
  });
  assert.ok(unreadable.includes("--allow-net=unix:/var/run/docker.sock"));
});

Deno.test("the logger masks the credentials of every URL of the list", () => {
  const urls = ["amqp://a:first%2Csecret@h1/", "amqps://b:second-secret@h2/"];
  const lines: string[] = [];
  const log = createLogger({ urls, write: (l) => lines.push(l) });
  log.warn("amqp_reconnect", { broker: urls.map(redactUrl).join(",") });
  log.error("crashed", { error: `connect to ${urls[0]} or ${urls[1]} failed` });
  assert.equal(lines.length, 2);
  for (const line of lines) {
    assert.ok(!/first|second-secret/.test(line), line);
  }
});
