/** Startup: the configuration karotten reads at start, and the failures no restart can fix (one clear line, exit 2). */
import assert from "node:assert/strict";
import { EXIT_CONFIG, EXIT_CRASH, EXIT_OK } from "../lib/exit_codes.ts";
import { type Karotten, REPO_ROOT, startKarotten, withLogTail } from "./helpers/karotten.ts";
import { daemonFlags } from "../lib/permissions.ts";
import { type Binding, freshBinding, RABBIT_URL } from "./helpers/rabbit.ts";
import { makeCerts } from "./helpers/certs.ts";
import { freePort, startProxy } from "./helpers/proxy.ts";
import { FakeEngine } from "./helpers/fake_engine.ts";
import { withDeadline } from "./helpers/deadline.ts";

const EXIT_TIMEOUT_MS = 20_000;

Deno.test("karotten without RABBITMQ_URL prints one line naming it and exits 2", async () => {
  const k = await startKarotten({ DOCKER_SOCK: "/tmp/nowhere.sock" });
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
  assert.equal(k.lines.length, 1, k.lines.join("\n"));
  assert.match(k.lines[0], /RABBITMQ_URL/);
});

Deno.test("karotten with a bad OVERFLOW names the variable and exits 2", async () => {
  const k = await startKarotten({ RABBITMQ_URL: RABBIT_URL, OVERFLOW: "block" });
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
  assert.equal(k.lines.length, 1, k.lines.join("\n"));
  assert.match(k.lines[0], /OVERFLOW/);
});

Deno.test("karotten with a stray % in the RABBITMQ_URL password exits 2 naming it, never printing it", async () => {
  const k = await startKarotten({
    RABBITMQ_URL: "amqp://guest:ab%zz@127.0.0.1:5672/",
    DOCKER_SOCK: "/tmp/nowhere.sock",
  });
  assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
  assert.equal(k.lines.length, 1, k.lines.join("\n"));
  assert.match(k.lines[0], /RABBITMQ_URL.*percent-encoding in its password/);
  assert.ok(!k.lines[0].includes("ab%zz"), k.lines[0]);
});

Deno.test("karotten with a missing exchange logs one error naming it and exits 2", async () => {
  const engine = await FakeEngine.start();
  const exchange = `kt-missing-${crypto.randomUUID().slice(0, 8)}`;
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: exchange,
  });
  try {
    assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
    const errors = k.lines.filter((l) => / error /.test(l));
    assert.equal(errors.length, 1, k.lines.join("\n"));
    assert.match(errors[0], new RegExp(`exchange_missing exchange=${exchange} `));
    assert.ok(!k.lines.some((l) => l.includes("guest:guest")), "the password is never printed");
  } finally {
    await engine.close();
  }
});

Deno.test("karotten exits 1 with one error line when METRICS_ADDR is taken", async () => {
  const engine = await FakeEngine.start();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr as Deno.NetAddr;
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    METRICS_ADDR: `127.0.0.1:${port}`,
  });
  try {
    assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CRASH);
    const errors = k.lines.filter((l) => / error /.test(l));
    assert.equal(errors.length, 1, k.lines.join("\n"));
    assert.match(errors[0], / error metrics_listen_failed error=.*(AddrInUse|in use)/i);
  } finally {
    taken.close();
    await engine.close();
  }
});

Deno.test("karotten with a missing or empty URL file names the variable and exits 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kt-creds-" });
  try {
    await Deno.writeTextFile(`${dir}/empty`, "\n");
    const cases: [Record<string, string>, string][] = [
      [{ RABBITMQ_URL_FILE: `${dir}/missing` }, "RABBITMQ_URL_FILE"],
      [{ RABBITMQ_URL_FILE: `${dir}/empty` }, "RABBITMQ_URL_FILE"],
      [{ CREDENTIALS_DIRECTORY: dir }, "CREDENTIALS_DIRECTORY"],
    ];
    for (const [env, variable] of cases) {
      const k = await startKarotten({ ...env, DOCKER_SOCK: "/tmp/nowhere.sock" });
      assert.equal(await withDeadline(k.exited, EXIT_TIMEOUT_MS, "exit"), EXIT_CONFIG);
      assert.equal(k.lines.length, 1, k.lines.join("\n"));
      assert.match(k.lines[0], new RegExp(`configuration error: ${variable}: `));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Starts karotten on a fake engine with `env`, awaits `amqp_connected`, stops it (exit 0). */
async function connectsWith(env: Record<string, string>, binding: Binding): Promise<Karotten> {
  const engine = await FakeEngine.start();
  const k = await startKarotten({
    ...env,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    KAROTTEN_TUNING: JSON.stringify({ amqpBackoffInitialMs: 100, amqpBackoffMaxMs: 500 }),
  });
  try {
    await k.waitForLog(/ info amqp_connected /, CONNECT_TIMEOUT_MS).catch((err) => {
      throw withLogTail(err, k);
    });
  } finally {
    assert.equal(await k.stop(), EXIT_OK);
    await engine.close();
  }
  return k;
}

const CONNECT_TIMEOUT_MS = 20_000;

Deno.test("karotten reads RABBITMQ_URL from the systemd credential in $CREDENTIALS_DIRECTORY", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kt-creds-" });
  const binding = await freshBinding();
  try {
    await Deno.writeTextFile(`${dir}/rabbitmq-url`, `${RABBIT_URL}\n`);
    await Deno.chmod(`${dir}/rabbitmq-url`, 0o400);
    await connectsWith({ CREDENTIALS_DIRECTORY: dir }, binding);
  } finally {
    await binding.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("karotten takes the brokers of RABBITMQ_URL_FILE in order, over amqps with RABBITMQ_CA_FILE, and prints no password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kt-creds-" });
  const certs = await makeCerts();
  const broker = new URL(RABBIT_URL);
  const proxy = await startProxy({
    target: { host: broker.hostname, port: Number(broker.port || 5672) },
    tls: { cert: certs.read(certs.serverCertFile), key: certs.read(certs.serverKeyFile) },
  });
  const binding = await freshBinding();
  try {
    const refused = `amqps://kt:first-password@localhost:${freePort()}/`;
    const second = `amqps://${broker.username}:${broker.password}@localhost:${proxy.port}/`;
    await Deno.writeTextFile(`${dir}/url`, `${refused},${second}\n`);
    const k = await connectsWith(
      { RABBITMQ_URL_FILE: `${dir}/url`, RABBITMQ_CA_FILE: certs.caFile },
      binding,
    );
    const connected = k.lines.find((l) => / info amqp_connected /.test(l))!;
    assert.match(connected, new RegExp(`url=amqps://[^ ]*localhost:${proxy.port}/`));
    assert.ok(
      k.lines.some((l) => / warn amqp_reconnect .*ECONNREFUSED/.test(l)),
      k.lines.join("\n"),
    );
    // The second URL's user may share its password (guest:guest): look for the pair.
    for (const secret of ["first-password", `:${broker.password}@`]) {
      assert.ok(!k.lines.some((l) => l.includes(secret)), `"${secret}" printed`);
    }
  } finally {
    await binding.close();
    await proxy.stop();
    await certs.remove();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("karotten whose permission set lacks a broker of the list names it and exits 2", async () => {
  // Flags computed for one broker, started with a list of two.
  const flags = daemonFlags((n) => ({ RABBITMQ_URL: "amqp://u:p@127.0.0.1:5672" })[n]);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...flags, "main.ts"],
    cwd: REPO_ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      NO_COLOR: "1",
      RABBITMQ_URL: "amqp://u:p@127.0.0.1:5672,amqp://u:hidden@127.0.0.1:5999",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const printed = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  assert.equal(out.code, EXIT_CONFIG, printed);
  assert.match(printed, /^karotten: configuration error: RABBITMQ_URL: .*127\.0\.0\.1:5999/);
  assert.equal(printed.trim().split("\n").length, 1, printed);
  assert.ok(!printed.includes("hidden"));
});
