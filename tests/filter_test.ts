import assert from "node:assert/strict";
import { compileFilter, globToRegExp, matchNames, NO_FILTERS } from "../lib/filter.ts";
import { loadConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { startEngine, TEST_IMAGE } from "./helpers/engine.ts";
import { freshBinding, RABBIT_URL } from "./helpers/rabbit.ts";
import { type Karotten, startKarotten } from "./helpers/karotten.ts";
import { waitFor } from "./helpers/deadline.ts";

const compose = (project: string, service: string, extra: Record<string, string> = {}) => ({
  "com.docker.compose.project": project,
  "com.docker.compose.service": service,
  ...extra,
});

Deno.test("globToRegExp matches whole names with * and ? and nothing else special", () => {
  assert.ok(globToRegExp("shop/*").test("shop/web"));
  assert.ok(globToRegExp("shop/*").test("shop/web/x"));
  assert.ok(!globToRegExp("shop/*").test("xshop/web"));
  assert.ok(globToRegExp("web-?").test("web-1"));
  assert.ok(!globToRegExp("web-?").test("web-10"));
  assert.ok(globToRegExp("a.b+(c)").test("a.b+(c)"));
  assert.ok(!globToRegExp("a.b").test("axb"));
});

Deno.test("matchNames gives the name and <project>/<service> as labelled and as keyed", () => {
  assert.deepEqual(matchNames("/plain", {}), ["plain", "standalone/plain"]);
  assert.deepEqual(matchNames("/shop-web-1", compose("shop.v2", "web")), [
    "shop-web-1",
    "shop.v2/web",
    "shop-v2/web",
  ]);
});

Deno.test("compileFilter: the ignore label always wins", () => {
  const f = compileFilter({ ...NO_FILTERS, include: ["*"] });
  assert.equal(f({ name: "/a", labels: { "karotten.ignore": "true" } }), "ignore_label");
  assert.equal(compileFilter(NO_FILTERS)({ name: "/a", labels: null }), "ship");
  assert.equal(
    compileFilter(NO_FILTERS)({ name: "/a", labels: { "karotten.ignore": "false" } }),
    "ship",
  );
});

Deno.test("compileFilter: EXCLUDE wins over INCLUDE; INCLUDE keeps only matches", () => {
  const f = compileFilter({
    include: ["shop/*", "db-*"],
    exclude: ["shop/debug"],
    includeLabels: [],
  });
  assert.equal(f({ name: "/x1", labels: compose("shop", "web") }), "ship");
  assert.equal(f({ name: "/x2", labels: compose("shop", "debug") }), "excluded");
  assert.equal(f({ name: "/db-main", labels: {} }), "ship");
  assert.equal(f({ name: "/cache", labels: {} }), "not_included");
  const onlyExclude = compileFilter({ include: [], exclude: ["standalone/*"], includeLabels: [] });
  assert.equal(onlyExclude({ name: "/lonely", labels: {} }), "excluded");
  assert.equal(onlyExclude({ name: "/x", labels: compose("p", "s") }), "ship");
});

Deno.test("compileFilter: INCLUDE_LABEL needs every pair", () => {
  const f = compileFilter({
    include: [],
    exclude: [],
    includeLabels: [{ key: "logs", value: "ship" }, { key: "team", value: "a" }],
  });
  assert.equal(f({ name: "/a", labels: { logs: "ship", team: "a" } }), "ship");
  assert.equal(f({ name: "/b", labels: { logs: "ship" } }), "label_missing");
  assert.equal(f({ name: "/c", labels: null }), "label_missing");
});

Deno.test("loadConfig parses the filters and names INCLUDE_LABEL when it is not key=value", () => {
  const c = loadConfig((n) =>
    ({
      RABBITMQ_URL: "amqp://h",
      INCLUDE: " shop/* ,, db-* ",
      EXCLUDE: "shop/debug",
      INCLUDE_LABEL: "logs=ship, team = a=b",
    })[n]
  );
  assert.deepEqual(c.filters, {
    include: ["shop/*", "db-*"],
    exclude: ["shop/debug"],
    includeLabels: [{ key: "logs", value: "ship" }, { key: "team", value: "a=b" }],
  });
  assert.throws(
    () => loadConfig((n) => ({ RABBITMQ_URL: "amqp://h", INCLUDE_LABEL: "novalue" })[n]),
    (err: unknown) => err instanceof ConfigError && err.variable === "INCLUDE_LABEL",
  );
});

// --- On real parts: a private dockerd, the real broker, the daemon with DEBUG (its request log).

const TIMEOUT_MS = 30_000;

/** The logs requests karotten made for a container, from its DEBUG request log. */
const logsRequests = (k: Karotten, id: string) =>
  k.lines.filter((l) => / debug docker_get /.test(l) && l.includes(`/containers/${id}/logs`));

Deno.test("filters keep containers out before any logs request; the others are shipped", async () => {
  const engine = await startEngine();
  const binding = await freshBinding();
  const say = (what: string) =>
    `trap "exit 0" TERM; while true; do echo "${what}"; sleep 0.2; done`;
  const run = (name: string, labels: string[], project?: string) =>
    engine.run(
      "--name",
      name,
      ...(project
        ? [
          "--label",
          `com.docker.compose.project=${project}`,
          "--label",
          `com.docker.compose.service=${name}`,
        ]
        : []),
      ...labels.flatMap((l) => ["--label", l]),
      TEST_IMAGE,
      "sh",
      "-c",
      say(name),
    );
  // Running before karotten starts (decided from the listing) ...
  const before = {
    web: await run("web", [], "shop"),
    debug: await run("debug", [], "shop"),
    other: await run("other", []),
  };
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    DEBUG: "1",
    INCLUDE: "shop/*,keep-*",
    EXCLUDE: "shop/debug",
    KAROTTEN_TUNING: JSON.stringify({ reconcileIntervalMs: 300 }),
  });
  try {
    await k.waitForLog(/ info ready /, TIMEOUT_MS);
    // ... and started while it runs (decided from the start event).
    const after = {
      keep: await run("keep-1", []),
      ignored: await run("keep-2", ["karotten.ignore=true"]),
      api: await run("api", [], "shop"),
      stray: await run("stray", []),
    };
    const shipped = [before.web, after.keep, after.api];
    const filtered: [string, string][] = [
      [before.debug, "excluded"],
      [before.other, "not_included"],
      [after.ignored, "ignore_label"],
      [after.stray, "not_included"],
    ];
    for (const [id, reason] of filtered) {
      await k.waitForLog(
        new RegExp(`info filtered id=${id.slice(0, 12)} .*reason=${reason}`),
        TIMEOUT_MS,
      );
    }
    const ids = new Set(shipped.map((id) => id.slice(0, 12)));
    await waitFor(
      () => new Set(binding.messages.map((m) => m.body.container_id)).size >= shipped.length,
      { timeoutMs: TIMEOUT_MS, what: "a message of every shipped container" },
    );
    // Several reconciles later, a filtered container still has no stream and no message.
    const reconciles = () =>
      k.lines.filter((l) => /docker_get path=\/containers\/json/.test(l)).length;
    const seen = reconciles();
    await waitFor(() => reconciles() >= seen + 3, { timeoutMs: TIMEOUT_MS, what: "3 reconciles" });
    for (const [id] of filtered) {
      assert.deepEqual(logsRequests(k, id), [], `logs requested for filtered ${id.slice(0, 12)}`);
      assert.equal(k.lines.filter((l) => l.includes(`filtered id=${id.slice(0, 12)}`)).length, 1);
    }
    for (const id of shipped) assert.ok(logsRequests(k, id).length >= 1);
    assert.deepEqual(
      [...new Set(binding.messages.map((m) => m.body.container_id))].sort(),
      [...ids].sort(),
    );
  } finally {
    const code = await k.stop();
    await binding.close();
    await engine.stop();
    assert.equal(code, 0, "exit code on SIGTERM");
  }
});

Deno.test("INCLUDE_LABEL ships only containers carrying the label", async () => {
  const engine = await startEngine();
  const binding = await freshBinding();
  const k = await startKarotten({
    RABBITMQ_URL: RABBIT_URL,
    DOCKER_SOCK: engine.sock,
    EXCHANGE: binding.exchange,
    DEBUG: "1",
    INCLUDE_LABEL: "logs=on",
  });
  try {
    await k.waitForLog(/ info ready /, TIMEOUT_MS);
    const on = await engine.run("--label", "logs=on", TEST_IMAGE, "sh", "-c", "echo labelled");
    const off = await engine.run("--label", "logs=off", TEST_IMAGE, "sh", "-c", "echo other");
    await k.waitForLog(
      new RegExp(`filtered id=${off.slice(0, 12)} .*reason=label_missing`),
      TIMEOUT_MS,
    );
    await binding.waitForCount(1, TIMEOUT_MS);
    await k.waitForLog(new RegExp(`detached id=${on.slice(0, 12)} `), TIMEOUT_MS);
    assert.deepEqual(binding.messages.map((m) => m.body.message), ["labelled"]);
    assert.deepEqual(logsRequests(k, off), []);
  } finally {
    const code = await k.stop();
    await binding.close();
    await engine.stop();
    assert.equal(code, 0, "exit code on SIGTERM");
  }
});
