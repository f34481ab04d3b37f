import assert from "node:assert/strict";
import { compileFilter, globToRegExp, matchNames, NO_FILTERS } from "../lib/filter.ts";
import { loadConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";

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
