import assert from "node:assert/strict";
import { DEFAULT_TUNING, loadConfig, redactUrl } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { daemonFlags, permissionFlags, RUNTIME_FLAGS } from "../lib/permissions.ts";
import { createLogger } from "../lib/log.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("loadConfig applies the defaults", () => {
  const c = loadConfig(env({ RABBITMQ_URL: "amqp://u:p@h:5672/" }));
  assert.equal(c.exchange, "containers-logs");
  assert.equal(c.dockerSock, "/var/run/docker.sock");
  assert.equal(c.overflow, "pause");
  assert.equal(c.debug, false);
  assert.equal(c.stateDir, undefined);
  assert.equal(c.maxLineBytes, 1 << 20);
  assert.equal(c.bufferBytes, 1 << 20);
  assert.deepEqual(c.tuning, DEFAULT_TUNING);
  assert.ok(Object.isFrozen(c));
});

Deno.test("loadConfig names the variable at fault", () => {
  const cases: [Record<string, string>, string][] = [
    [{}, "RABBITMQ_URL"],
    [{ RABBITMQ_URL: "http://x" }, "RABBITMQ_URL"],
    [{ RABBITMQ_URL: "amqp://h", OVERFLOW: "block" }, "OVERFLOW"],
    [{ RABBITMQ_URL: "amqp://h", DOCKER_SOCK: "rel.sock" }, "DOCKER_SOCK"],
    [{ RABBITMQ_URL: "amqp://h", MAX_LINE_BYTES: "-1" }, "MAX_LINE_BYTES"],
    [{ RABBITMQ_URL: "amqp://h", BUFFER_BYTES: "32MiB" }, "BUFFER_BYTES"],
    [{ RABBITMQ_URL: "amqp://h", BUFFER_BYTES: "0" }, "BUFFER_BYTES"],
    [{ RABBITMQ_URL: "amqp://h", KAROTTEN_TUNING: "{bad" }, "KAROTTEN_TUNING"],
    [{ RABBITMQ_URL: "amqp://h", KAROTTEN_TUNING: '{"nope":1}' }, "KAROTTEN_TUNING"],
    [{ RABBITMQ_URL: "amqp://u:ab%zz@h:5672/" }, "RABBITMQ_URL"],
    [{ RABBITMQ_URL: "amqp://u%zz:p@h:5672/" }, "RABBITMQ_URL"],
    [{ RABBITMQ_URL: "amqp://u:p@h:5672/v%zz" }, "RABBITMQ_URL"],
    [{ RABBITMQ_URL: "amqp://h", DOCKER_SOCK: "/a.sock,b" }, "DOCKER_SOCK"],
    [{ RABBITMQ_URL: "amqp://h", STATE_DIR: "/tmp/x,/etc" }, "STATE_DIR"],
  ];
  for (const [vars, variable] of cases) {
    assert.throws(() => loadConfig(env(vars)), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.variable, variable);
      assert.ok(err.message.startsWith(variable));
      return true;
    });
  }
});

Deno.test("loadConfig reads OVERFLOW and BUFFER_BYTES", () => {
  const c = loadConfig(env({ RABBITMQ_URL: "amqp://h", OVERFLOW: "drop", BUFFER_BYTES: "1000" }));
  assert.equal(c.overflow, "drop");
  assert.equal(c.bufferBytes, 1000);
});

Deno.test("BUFFER_BYTES defaults by OVERFLOW: 1 MiB to pause, 8 MiB to drop", () => {
  const pause = loadConfig(env({ RABBITMQ_URL: "amqp://h", OVERFLOW: "pause" }));
  assert.equal(pause.bufferBytes, 1 << 20);
  const drop = loadConfig(env({ RABBITMQ_URL: "amqp://h", OVERFLOW: "drop" }));
  assert.equal(drop.bufferBytes, 8 << 20);
  const set = loadConfig(
    env({ RABBITMQ_URL: "amqp://h", OVERFLOW: "pause", BUFFER_BYTES: "9000" }),
  );
  assert.equal(set.bufferBytes, 9000);
});

Deno.test("loadConfig reads tuning overrides", () => {
  const c = loadConfig(env({ RABBITMQ_URL: "amqp://h", KAROTTEN_TUNING: '{"pingIntervalMs":50}' }));
  assert.equal(c.tuning.pingIntervalMs, 50);
  assert.equal(c.tuning.headerTimeoutMs, 15_000);
});

Deno.test("redactUrl and the logger never show the password", () => {
  const url = "amqp://user:s3cr%40t@broker:5672/vh";
  assert.equal(redactUrl(url), "amqp://user:***@broker:5672/vh");
  const lines: string[] = [];
  const log = createLogger({ urls: [url], write: (l) => lines.push(l) });
  log.error("oops", { error: `connect to ${url} refused`, url });
  assert.equal(lines.length, 1);
  assert.ok(!lines[0].includes("s3cr"), lines[0]);
  assert.match(
    lines[0],
    /^\S+ error oops error="connect to amqp:\/\/user:\*\*\*@broker:5672\/vh refused" url=amqp:\/\/user:\*\*\*@/,
  );
});

Deno.test("permissionFlags scopes the daemon to the socket and the broker", () => {
  const flags = permissionFlags(env({
    RABBITMQ_URL: "amqp://u:p@10.1.2.3:5673/",
    DOCKER_SOCK: "/run/d.sock",
  }));
  assert.ok(flags.includes("--allow-net=unix:/run/d.sock,10.1.2.3:5673"));
  assert.ok(flags.includes("--allow-read=/run/d.sock"));
  assert.ok(flags.includes("--allow-write=/run/d.sock"));
  assert.ok(flags.some((f) => f.startsWith("--allow-env=RABBITMQ_URL,")));
  assert.ok(!flags.some((f) => f === "-A" || f === "--allow-all" || f === "--allow-run"));
  const withState = permissionFlags(env({ RABBITMQ_URL: "amqp://h", STATE_DIR: "/var/lib/k" }));
  assert.ok(withState.includes("--allow-read=/var/run/docker.sock,/var/lib/k"));
  assert.ok(withState.includes("--allow-write=/var/run/docker.sock,/var/lib/k"));
  assert.ok(withState.includes("--allow-net=unix:/var/run/docker.sock,h:5672"));
});

Deno.test("loadConfig never prints the password of a malformed RABBITMQ_URL", () => {
  assert.throws(
    () => loadConfig(env({ RABBITMQ_URL: "amqp://u:ab%zz@h:5672/" })),
    (err: unknown) => err instanceof ConfigError && !err.message.includes("ab%zz"),
  );
});

Deno.test("permissionFlags refuses a path with a comma and keeps spaces inside one flag", () => {
  for (const name of ["DOCKER_SOCK", "STATE_DIR"]) {
    assert.throws(
      () => permissionFlags(env({ RABBITMQ_URL: "amqp://h", [name]: "/a.sock,b" })),
      (err: unknown) => err instanceof ConfigError && err.variable === name,
    );
  }
  const flags = permissionFlags(env({ RABBITMQ_URL: "amqp://h", STATE_DIR: "/tmp/x --allow-run" }));
  assert.ok(flags.includes("--allow-read=/var/run/docker.sock,/tmp/x --allow-run"));
  assert.ok(!flags.includes("--allow-run"));
});

Deno.test("daemonFlags adds only runtime flags to the permission set", () => {
  const vars = env({ RABBITMQ_URL: "amqp://h" });
  const flags = daemonFlags(vars);
  assert.deepEqual(flags.slice(0, permissionFlags(vars).length), permissionFlags(vars));
  assert.deepEqual(flags.slice(permissionFlags(vars).length), RUNTIME_FLAGS);
  assert.ok(RUNTIME_FLAGS.every((f) => !f.startsWith("--allow-") && f !== "-A"));
});

Deno.test("permissionFlags lets the daemon listen on METRICS_ADDR only when it is set", () => {
  const net = (vars: Record<string, string>) =>
    permissionFlags(env(vars)).find((f) => f.startsWith("--allow-net="));
  assert.equal(net({ RABBITMQ_URL: "amqp://h" }), "--allow-net=unix:/var/run/docker.sock,h:5672");
  assert.equal(
    net({ RABBITMQ_URL: "amqp://h", METRICS_ADDR: "127.0.0.1:9464" }),
    "--allow-net=unix:/var/run/docker.sock,h:5672,127.0.0.1:9464",
  );
  assert.equal(
    net({ RABBITMQ_URL: "amqp://h", METRICS_ADDR: "[::1]:9464" }),
    "--allow-net=unix:/var/run/docker.sock,h:5672,[::1]:9464",
  );
  assert.equal(
    net({ RABBITMQ_URL: "amqp://h", METRICS_ADDR: "9464" }),
    "--allow-net=unix:/var/run/docker.sock,h:5672",
  );
});

Deno.test("loadConfig reads METRICS_ADDR and names it when it is not host:port", () => {
  const load = (addr: string) => loadConfig(env({ RABBITMQ_URL: "amqp://h", METRICS_ADDR: addr }));
  assert.deepEqual(load("127.0.0.1:9464").metricsAddr, { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(load("[::1]:9464").metricsAddr, { hostname: "::1", port: 9464 });
  assert.equal(load("").metricsAddr, undefined);
  for (const bad of ["9464", "host:", ":9464", "h:0", "h:70000", "[::1]", "a:b:1"]) {
    assert.throws(() => load(bad), (err: unknown) => {
      assert.ok(err instanceof ConfigError, bad);
      assert.equal(err.variable, "METRICS_ADDR");
      return true;
    });
  }
});

Deno.test("loadConfig in a dry run needs no RABBITMQ_URL and ignores a bad one", () => {
  const c = loadConfig(env({ RABBITMQ_URL: "http://not-amqp" }), { dryRun: true });
  assert.equal(c.dryRun, true);
  assert.deepEqual(c.brokers.urls, []);
  assert.equal(loadConfig(env({}), { dryRun: true }).dryRun, true);
});
