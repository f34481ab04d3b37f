/**
 * Which containers are shipped: the rule, as pure functions. Decided once per attach, from the
 * container's name and labels as inspect reports them, before any logs request.
 *
 * - label `karotten.ignore=true`: never shipped;
 * - `EXCLUDE` globs: a container matching any is not shipped (`EXCLUDE` wins over `INCLUDE`);
 * - `INCLUDE` globs: when set, only a container matching one is shipped;
 * - `INCLUDE_LABEL` `key=value` pairs: when set, only a container carrying all of them is shipped.
 *
 * Globs (`*` any run of characters, `?` one character, `/` included) are matched against the
 * container name and against `<project>/<service>`, both as labelled and as in the routing key.
 * @module
 */
import { identify, PROJECT_LABEL, SERVICE_LABEL, STANDALONE } from "./message.ts";

/** The label that keeps a container out whatever else is configured. */
export const IGNORE_LABEL = "karotten.ignore";

/** One `INCLUDE_LABEL` condition. */
export interface LabelMatch {
  /** Label key. */
  readonly key: string;
  /** Required value. */
  readonly value: string;
}

/** The configured filters (empty lists: no such rule). */
export interface FilterRules {
  /** `INCLUDE` globs. */
  readonly include: readonly string[];
  /** `EXCLUDE` globs. */
  readonly exclude: readonly string[];
  /** `INCLUDE_LABEL` conditions, all required. */
  readonly includeLabels: readonly LabelMatch[];
}

/** No filters: every container is shipped (but `karotten.ignore=true`). */
export const NO_FILTERS: FilterRules = Object.freeze({
  include: [],
  exclude: [],
  includeLabels: [],
});

/** Why a container is (not) shipped. */
export type FilterVerdict = "ship" | "ignore_label" | "excluded" | "not_included" | "label_missing";

/** What the rule looks at. */
export interface FilterSubject {
  /** Container name, with or without its leading `/`. */
  name: string;
  /** Its labels. */
  labels: Record<string, string> | null | undefined;
}

/** A compiled rule: the verdict for one container. */
export type ContainerFilter = (subject: FilterSubject) => FilterVerdict;

/** Compiles the rules once; the result decides a container in a few regex tests. */
export function compileFilter(rules: FilterRules): ContainerFilter {
  const include = rules.include.map(globToRegExp);
  const exclude = rules.exclude.map(globToRegExp);
  const labels = rules.includeLabels;
  return ({ name, labels: have }) => {
    if (have?.[IGNORE_LABEL] === "true") return "ignore_label";
    if (include.length === 0 && exclude.length === 0 && labels.length === 0) return "ship";
    const names = matchNames(name, have);
    const any = (res: RegExp[]) => res.some((re) => names.some((n) => re.test(n)));
    if (any(exclude)) return "excluded";
    if (include.length > 0 && !any(include)) return "not_included";
    for (const { key, value } of labels) if (have?.[key] !== value) return "label_missing";
    return "ship";
  };
}

/** The names globs are matched against: the container name and `<project>/<service>` twice. */
export function matchNames(
  name: string,
  labels: Record<string, string> | null | undefined,
): string[] {
  const containerName = name.replace(/^\//, "");
  const project = labels?.[PROJECT_LABEL] || STANDALONE;
  const service = labels?.[SERVICE_LABEL] || containerName;
  const keyed = identify("", containerName, "", labels);
  const names = [containerName, `${project}/${service}`];
  const keyForm = `${keyed.project}/${keyed.service}`;
  if (keyForm !== names[1]) names.push(keyForm);
  return names;
}

/** A whole-string RegExp for a glob: `*` any run of characters, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (const ch of glob) {
    if (ch === "*") source += ".*";
    else if (ch === "?") source += ".";
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "s");
}

/** Splits a comma-separated list, trimming items and dropping empty ones. */
export function splitList(raw: string | undefined): string[] {
  return (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
}
