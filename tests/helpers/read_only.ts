/**
 * The read-only rule as tests check it: every request karotten makes to the engine is a GET of
 * `/_ping`, `/events` or `/containers/...`, optionally `/vX.Y`-prefixed, or (Podman, a TTY
 * container) of `/v<libpod version>/libpod/containers/<id>/logs`.
 * @module
 */
import assert from "node:assert/strict";

/** Every path karotten may request. */
export const ALLOWED_PATH =
  /^((\/v\d+\.\d+)?(\/_ping|\/events|\/containers\/[^?]+)|\/v[0-9][0-9A-Za-z.-]*\/libpod\/containers\/[^/?]+\/logs)(\?.*)?$/;

/** One request as seen by an engine or logged by karotten. */
export interface SeenRequest {
  /** HTTP method. */
  method: string;
  /** Path and query. */
  path: string;
}

/** Asserts that there were requests and that each is a GET of an allowed path. */
export function assertOnlyReads(requests: readonly SeenRequest[]): void {
  assert.ok(requests.length > 0, "no engine request seen (for karotten's own log: DEBUG=1?)");
  for (const r of requests) {
    assert.equal(r.method, "GET", `${r.method} ${r.path}`);
    assert.match(r.path, ALLOWED_PATH);
  }
}

/** The requests karotten logged with `DEBUG=1` (`debug docker_get path=...`; it only GETs). */
export function loggedRequests(lines: readonly string[]): SeenRequest[] {
  return lines.filter((l) => / debug docker_get /.test(l)).map((line) => {
    const raw = / path=(.*)$/.exec(line)?.[1] ?? line;
    return { method: "GET", path: raw.startsWith('"') ? JSON.parse(raw) : raw };
  });
}
