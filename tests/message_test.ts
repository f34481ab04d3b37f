import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { timestampToNanos } from "../lib/time.ts";
import {
  capBytes,
  EnvelopeEncoder,
  fitKeyParts,
  identify,
  MAX_FIELD_BYTES,
  MAX_ROUTING_KEY_BYTES,
  messageId,
  PROJECT_LABEL,
  routingKey,
  SERVICE_LABEL,
} from "../lib/message.ts";

const ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

Deno.test("identify uses the compose labels and replaces dots", () => {
  const who = identify(ID, "/shop_web_1", "shop/web:1.2", {
    "com.docker.compose.project": "shop.v2",
    "com.docker.compose.service": "web.api",
  });
  assert.deepEqual(who, {
    project: "shop-v2",
    service: "web-api",
    containerName: "shop_web_1",
    containerId: "0123456789ab",
    image: "shop/web:1.2",
  });
  assert.equal(routingKey(who, "stderr"), "shop-v2.web-api.stderr");
});

Deno.test("identify falls back to standalone and the container name", () => {
  const who = identify(ID, "/plain.one", "kt/busybox", null);
  assert.equal(routingKey(who, "stdout"), "standalone.plain-one.stdout");
  assert.equal(who.containerName, "plain.one");
});

Deno.test("fitKeyParts keeps short keys and shortens long ones deterministically", () => {
  assert.deepEqual(fitKeyParts("a", "b"), ["a", "b"]);
  const project = "p".repeat(150);
  const service = "s".repeat(150);
  const [p, s] = fitKeyParts(project, service);
  const key = `${p}.${s}.stderr`;
  assert.ok(Buffer.byteLength(key) <= MAX_ROUTING_KEY_BYTES, `${Buffer.byteLength(key)} bytes`);
  assert.match(p, /^p+~[0-9a-f]{8}$/);
  assert.deepEqual(fitKeyParts(project, service), [p, s]);
  assert.notEqual(fitKeyParts(project + "x", service)[0], p);
  // Multi-byte names are cut at character boundaries.
  const [q] = fitKeyParts("ü".repeat(200), "x".repeat(100));
  assert.ok(!q.includes("\ufffd"));
  assert.ok(Buffer.byteLength(q) <= 120);
});

Deno.test("EnvelopeEncoder writes the contract's JSON body", () => {
  const who = identify(ID, "/c", "img", { "com.docker.compose.project": "p" });
  const enc = new EnvelopeEncoder(who, "stdout");
  assert.equal(enc.routingKey, "p.c.stdout");
  const message = 'he said "hi"\t\\ {"json": true} ü';
  const body = enc.encode("2026-11-25T20:24:44.123456789Z", new TextEncoder().encode(message));
  assert.ok(Buffer.isBuffer(body));
  assert.deepEqual(JSON.parse(body.toString("utf8")), {
    timestamp: "2026-11-25T20:24:44.123456789Z",
    project: "p",
    service: "c",
    container_name: "c",
    container_id: "0123456789ab",
    image: "img",
    stream: "stdout",
    message,
  });
});

Deno.test("EnvelopeEncoder gives the same bytes whether it copies the line or escapes it", () => {
  const who = identify(ID, "/web.1", "registry/img:1", { "com.docker.compose.project": "p" });
  const enc = new EnvelopeEncoder(who, "stderr");
  const ts = "2026-11-25T20:24:44.123456789Z";
  const reference = (t: string, text: string) =>
    `{"timestamp":${JSON.stringify(t)},"project":"p","service":"web-1","container_name":` +
    `"web.1","container_id":"0123456789ab","image":"registry/img:1","stream":"stderr",` +
    `"message":${JSON.stringify(text)}}`;
  const lines: [string, Uint8Array][] = [
    ["", new Uint8Array(0)],
    ["plain", new TextEncoder().encode("000001 GET /index.html 200 ~ {x} [y] 'z'")],
    ["quote", new TextEncoder().encode('say "hi"')],
    ["backslash", new TextEncoder().encode("C:\\temp")],
    ["tab", new TextEncoder().encode("a\tb")],
    ["DEL", new Uint8Array([0x61, 0x7f, 0x62])],
    ["non-ASCII", new TextEncoder().encode("grüße 🥕")],
    ["invalid UTF-8", new Uint8Array([0x61, 0xff, 0xc3])],
  ];
  for (const [label, bytes] of lines) {
    const body = enc.encode(ts, bytes);
    assert.ok(Buffer.isBuffer(body), label);
    const want = reference(ts, new TextDecoder().decode(bytes));
    assert.equal(body.toString("utf8"), want, label);
  }
  const odd = 'not "a" timestamp';
  assert.equal(enc.encode(odd, new Uint8Array([0x61])).toString("utf8"), reference(odd, "a"));
});

Deno.test("EnvelopeEncoder bodies do not share bytes with the line or each other", () => {
  const enc = new EnvelopeEncoder(identify(ID, "/c", "img", null), "stdout");
  const line = new TextEncoder().encode("aaaa");
  const first = enc.encode("2026-11-25T20:24:44.123456789Z", line);
  line.fill(0x62);
  const second = enc.encode("2026-11-25T20:24:44.123456789Z", line);
  assert.equal(JSON.parse(first.toString("utf8")).message, "aaaa");
  assert.equal(JSON.parse(second.toString("utf8")).message, "bbbb");
});

Deno.test("messageId is compact, deterministic and distinct per line", () => {
  const short = "0123456789ab";
  const a = messageId(short, "2026-11-25T20:24:44.123456789Z", 1);
  assert.equal(a, messageId(short, "2026-11-25T20:24:44.123456789Z", 1));
  assert.match(a, /^0123456789ab[0-9a-z]{13}1$/);
  assert.ok(a.length <= 32, a);
  assert.notEqual(a, messageId(short, "2026-11-25T20:24:44.123456789Z", 2));
  assert.notEqual(a, messageId(short, "2026-11-25T20:24:44.123456790Z", 1));
  // The same instant written with an offset is the same line.
  assert.equal(a, messageId(short, "2026-11-25T21:24:44.123456789+01:00", 1));
});

Deno.test("messageId: the nanoseconds are the exact base-36 of the instant, as BigInt gives it", () => {
  const short = "0123456789ab";
  const stamps = [
    "1970-01-01T00:00:00.000000000Z",
    "1970-01-01T00:00:00.000000001Z",
    "1969-12-31T23:59:59.999999999Z",
    "2026-11-25T20:24:44.123456789Z",
    "2026-11-25T20:24:44.999999999Z",
    "2106-02-07T06:28:16.000000000Z",
    "7000-01-01T00:00:00.000000000Z",
    "9999-12-31T23:59:59.999999999Z",
  ];
  for (let i = 0; i < 2000; i++) {
    const ms = 1_700_000_000_000 + i * 7_919_777;
    const frac = String((i * 982_451_653) % 1e9).padStart(9, "0");
    stamps.push(new Date(ms).toISOString().slice(0, 19) + "." + frac + "Z");
  }
  for (const ts of stamps) {
    const nanos = timestampToNanos(ts).toString(36).padStart(13, "0");
    assert.equal(messageId(short, ts, 3), `${short}${nanos}3`, ts);
  }
});

Deno.test("messageId: the count is its base-36 digits, of any length", () => {
  const short = "0123456789ab";
  const ts = "2026-11-25T20:24:44.123456789Z";
  const nanos = timestampToNanos(ts).toString(36).padStart(13, "0");
  for (const seq of [0, 1, 9, 10, 35, 36, 37, 1295, 1296, 46655, 46656, 2 ** 31, 2 ** 53 - 1]) {
    assert.equal(messageId(short, ts, seq), `${short}${nanos}${seq.toString(36)}`, String(seq));
  }
});

Deno.test("identify caps a 1 MB name, image and labels with the routing key's hash-suffix rule", () => {
  const big = "n".repeat(1 << 20);
  const identity = identify("cd".repeat(32), `/${big}`, `img-${big}`, {
    [PROJECT_LABEL]: `p${big}`,
    [SERVICE_LABEL]: `s${big}`,
  });
  for (const field of ["containerName", "image"] as const) {
    const value = identity[field];
    assert.equal(Buffer.byteLength(value, "utf8"), MAX_FIELD_BYTES, field);
    assert.match(value, /~[0-9a-f]{8}$/, field);
  }
  assert.equal(identity.containerName, capBytes(big, MAX_FIELD_BYTES));
  assert.ok(Buffer.byteLength(routingKey(identity, "stderr"), "utf8") <= 255);
  const body = new EnvelopeEncoder(identity, "stdout").encode(
    "2030-01-01T00:00:00.000000000Z",
    new TextEncoder().encode("hello"),
  );
  assert.ok(body.length < 1024, `a 5-byte line became ${body.length} bytes`);
});

Deno.test("capBytes leaves short values alone and cuts at a character boundary", () => {
  assert.equal(capBytes("short", 255), "short");
  const wide = "é".repeat(200); // 400 bytes
  const cut = capBytes(wide, 255);
  assert.ok(Buffer.byteLength(cut, "utf8") <= 255);
  assert.ok(cut.startsWith("é".repeat(100)));
  assert.equal(capBytes(wide, 255), cut, "deterministic");
});
