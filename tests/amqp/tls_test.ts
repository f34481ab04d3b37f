/**
 * `amqps://` through a TLS-terminating proxy in front of the real broker, with certificates made
 * by `openssl` for each run: the broker's own configuration is never touched.
 */
import assert from "node:assert/strict";
import { Publisher } from "../../lib/amqp/publisher.ts";
import { socketOptions } from "../../lib/amqp/connection.ts";
import type { TlsMaterial } from "../../lib/broker_config.ts";
import { DEFAULT_TUNING, type Tuning } from "../../lib/config.ts";
import { MessageQueue } from "../../lib/queue.ts";
import { CaptureLog, deadline, openTopic, RABBIT_URL, testMessage } from "./_broker.ts";
import { CLIENT_CN, makeCerts, type TestCerts } from "../helpers/certs.ts";
import { type ProxyTls, startProxy } from "../helpers/proxy.ts";

const NEVER = new AbortController().signal;

const TUNING: Readonly<Tuning> = {
  ...DEFAULT_TUNING,
  queueCapacity: 256,
  publishWindow: 64,
  amqpBackoffInitialMs: 100,
  amqpBackoffMaxMs: 800,
};

/** The broker behind the proxies. */
const BROKER = (() => {
  const url = new URL(RABBIT_URL);
  return { host: url.hostname, port: Number(url.port || 5672) };
})();

/** `amqps://` to the proxy on `port`, by the name `localhost`, with the broker's credentials. */
function amqpsUrl(port: number): string {
  const url = new URL(RABBIT_URL);
  return `amqps://${url.username}:${url.password}@localhost:${port}${url.pathname}`;
}

/** Runs `fn` with fresh certificates and a TLS proxy set up from them by `proxyTls`. */
async function withTlsProxy(
  proxyTls: (certs: TestCerts) => ProxyTls,
  fn: (certs: TestCerts, proxy: Awaited<ReturnType<typeof startProxy>>) => Promise<void>,
): Promise<void> {
  const certs = await makeCerts();
  try {
    const proxy = await startProxy({ target: BROKER, tls: proxyTls(certs) });
    try {
      await fn(certs, proxy);
    } finally {
      await proxy.stop();
    }
  } finally {
    await certs.remove();
  }
}

/** A publisher on `exchange` through `urls` with `tls`; `stop()` aborts it and awaits `run()`. */
function startPublisher(exchange: string, urls: string[], tls: TlsMaterial) {
  const queue = new MessageQueue(TUNING.queueCapacity);
  const log = new CaptureLog();
  const publisher = new Publisher({
    brokers: { urls, tls, variable: "RABBITMQ_URL" },
    exchange,
    queue,
    tuning: TUNING,
    log,
    debug: false,
  });
  const ctl = new AbortController();
  const running = publisher.run(ctl.signal);
  return {
    queue,
    log,
    publisher,
    stop: async () => {
      ctl.abort();
      await running;
    },
  };
}

const serverCert = (certs: TestCerts): ProxyTls => ({
  cert: certs.read(certs.serverCertFile),
  key: certs.read(certs.serverKeyFile),
});

Deno.test("Publisher publishes over amqps trusting RABBITMQ_CA_FILE's CA", async () => {
  await withTlsProxy(serverCert, async (certs, proxy) => {
    const topic = await openTopic();
    const p = startPublisher(topic.exchange, [amqpsUrl(proxy.port)], {
      ca: certs.read(certs.caFile),
    });
    try {
      await deadline(p.publisher.firstConnect(), 10_000, "first amqps session");
      for (let n = 1; n <= 100; n++) assert.ok(p.queue.offer(testMessage(n)));
      await topic.consumer!.waitForAll(100, 10_000);
      await deadline(p.queue.waitForEmpty(NEVER), 5_000, "all confirmed");
      assert.equal(proxy.accepted, 1, "one TLS connection");
      assert.equal(p.log.count("amqp_reconnect"), 0);
    } finally {
      await p.stop();
      await topic.remove();
    }
  });
});

/**
 * Waits for `attempts` failed attempts, then checks each was one error line with the TLS reason
 * and a backoff wait, and that the proxy saw no more connections than attempts (no storm).
 */
async function assertOneErrorPerAttemptAndBackoff(
  p: ReturnType<typeof startPublisher>,
  proxy: { accepted: number },
  reason: RegExp,
): Promise<void> {
  const attempts = 5;
  await p.log.waitFor("amqp_reconnect", 15_000, attempts);
  const lines = p.log.events.filter((e) => e.event === "amqp_reconnect");
  const accepted = proxy.accepted;
  for (const [i, { level, fields }] of lines.entries()) {
    assert.equal(level, "error", `attempt ${i + 1} is logged as an error`);
    assert.match(String(fields.reason), reason);
    assert.equal(fields.attempt, i + 1);
    const nominal = Math.min(TUNING.amqpBackoffMaxMs, TUNING.amqpBackoffInitialMs * 2 ** i);
    const wait = Number(fields.wait_ms);
    assert.ok(wait >= nominal / 2 && wait <= nominal, `attempt ${i + 1} waited ${wait} ms`);
  }
  // Every connection the proxy accepted is one logged attempt (the one under way aside).
  assert.ok(
    accepted >= lines.length && accepted <= lines.length + 1,
    `${accepted} TLS connections for ${lines.length} logged attempts`,
  );
  assert.ok(!JSON.stringify(p.log.events).includes(new URL(RABBIT_URL).password + "@"));
  console.log(`${lines.length} attempts, ${accepted} connections: ${lines[0].fields.reason}`);
}

Deno.test("Publisher refuses a certificate of an untrusted CA: one error line per attempt and backoff", async () => {
  await withTlsProxy(serverCert, async (certs, proxy) => {
    const p = startPublisher("unused", [amqpsUrl(proxy.port)], {
      ca: certs.read(certs.otherCaFile),
    });
    try {
      p.queue.offer(testMessage(1));
      await assertOneErrorPerAttemptAndBackoff(p, proxy, /not signed by a trusted CA/);
      assert.equal(p.publisher.connected, false);
      assert.equal(p.queue.size, 1, "the message waits in the buffer");
    } finally {
      await p.stop();
    }
  });
});

Deno.test("Publisher refuses a certificate for another name: one error line per attempt and backoff", async () => {
  const otherName = (certs: TestCerts): ProxyTls => ({
    cert: certs.read(certs.otherNameCertFile),
    key: certs.read(certs.otherNameKeyFile),
  });
  await withTlsProxy(otherName, async (certs, proxy) => {
    const p = startPublisher("unused", [amqpsUrl(proxy.port)], {
      ca: certs.read(certs.caFile),
    });
    try {
      await assertOneErrorPerAttemptAndBackoff(p, proxy, /not valid for the name localhost/);
      assert.equal(p.publisher.connected, false);
    } finally {
      await p.stop();
    }
  });
});

Deno.test("Publisher presents the client certificate when the server asks for one", async () => {
  const asking = (certs: TestCerts): ProxyTls => ({
    ...serverCert(certs),
    ca: certs.read(certs.caFile),
    requestCert: true,
  });
  await withTlsProxy(asking, async (certs, proxy) => {
    const topic = await openTopic();
    const p = startPublisher(topic.exchange, [amqpsUrl(proxy.port)], {
      ca: certs.read(certs.caFile),
      cert: certs.read(certs.clientCertFile),
      key: certs.read(certs.clientKeyFile),
    });
    try {
      await deadline(p.publisher.firstConnect(), 10_000, "first amqps session");
      p.queue.offer(testMessage(1));
      await topic.consumer!.waitForAll(1, 10_000);
      assert.deepEqual(proxy.clientCertificates, [CLIENT_CN]);
    } finally {
      await p.stop();
      await topic.remove();
    }
  });
});

Deno.test("socketOptions uses TLS material only for amqps and EXTERNAL only without a user", () => {
  const tls = { ca: "CA", cert: "CERT", key: "KEY" };
  assert.deepEqual(socketOptions({ url: "amqp://u:p@h", tls }, 5000), { timeout: 5000 });
  const plain = socketOptions({ url: "amqps://u:p@h", tls }, 5000);
  assert.deepEqual(plain.ca, ["CA"]);
  assert.equal(plain.cert, "CERT");
  assert.equal(plain.key, "KEY");
  assert.equal(plain.credentials, undefined, "a user in the URL logs in with PLAIN");
  const external = socketOptions({ url: "amqps://h:5671/", tls }, 5000);
  assert.equal((external.credentials as { mechanism: string }).mechanism, "EXTERNAL");
  const caOnly = socketOptions({ url: "amqps://h", tls: { ca: "CA" } }, 5000);
  assert.equal(caOnly.cert, undefined);
  assert.equal(caOnly.credentials, undefined);
});
