import assert from "node:assert/strict";
import { DockerApiError } from "../lib/errors.ts";

Deno.test("DockerApiError.permanent is true for gone, removed and unreadable logs only", () => {
  const err = (status: number, detail = "x") => new DockerApiError(status, "/p", detail);
  for (const status of [404, 409, 501]) assert.equal(err(status).permanent, true, `${status}`);
  for (const status of [400, 500, 502, 503]) {
    assert.equal(err(status).permanent, false, `${status}`);
  }
  // Podman's answer for a container with `--log-driver none`.
  const podman = "failed to obtain logs for Container 'abc': this container is using the 'none' " +
    "log driver, cannot read logs: this container is not logging output";
  assert.equal(err(500, podman).permanent, true);
});
