/** The example alerting rules: valid for Prometheus, firing as intended, on metrics that exist. */
import assert from "node:assert/strict";
import { METRIC_NAMES } from "../../lib/telemetry/prometheus.ts";
import { REPO_ROOT } from "../helpers/karotten.ts";
import { promtool } from "../helpers/promtool.ts";

const RULES = "karotten.rules.example.yml";

Deno.test("karotten.rules.example.yml passes promtool check rules and its unit tests", async () => {
  assert.match(await promtool(["check", "rules", RULES]), /SUCCESS: 5 rules found/);
  assert.match(
    await promtool(["test", "rules", "tests/telemetry/alert_rules_promtool.yml"]),
    /SUCCESS/,
  );
});

Deno.test("karotten.rules.example.yml uses only metrics karotten exposes", async () => {
  const text = await Deno.readTextFile(`${REPO_ROOT}${RULES}`);
  const used = new Set([...text.matchAll(/\bkarotten_[a-z_]+/g)].map((m) => m[0]));
  assert.ok(used.size >= 4);
  for (const name of used) assert.ok(METRIC_NAMES.includes(name), `${name} is not exposed`);
});
