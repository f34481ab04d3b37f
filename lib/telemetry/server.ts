/**
 * The opt-in HTTP endpoint (`METRICS_ADDR`): `GET /metrics` (Prometheus text, the process's
 * memory read at each scrape) and `GET /healthz` (200 or 503 with a JSON reason). Read-only;
 * anything else is 404 or 405.
 * @module
 */
import type { ListenAddr } from "../config.ts";
import type { Logger } from "../log.ts";
import { describe } from "../errors.ts";
import { healthOf } from "./health.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
import type { Snapshot } from "./snapshot.ts";

/**
 * Listens on `addr` until `signal` aborts; resolves once the server has closed. Throws at once
 * when the address cannot be listened on.
 */
export function serveTelemetry(
  addr: ListenAddr,
  snapshot: () => Snapshot,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const server = Deno.serve({
    hostname: addr.hostname,
    port: addr.port,
    signal,
    onListen: ({ hostname, port }) =>
      log.info("metrics_listening", { addr: `${hostname}:${port}` }),
    onError: (err) => {
      log.warn("metrics_request_failed", { error: describe(err) });
      return new Response("internal error\n", { status: 500 });
    },
  }, (req) => respond(req, snapshot));
  return server.finished;
}

function respond(req: Request, snapshot: () => Snapshot): Response {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const path = new URL(req.url).pathname;
  if (path === "/metrics") {
    return new Response(renderPrometheus(snapshot(), Deno.memoryUsage()), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
    });
  }
  if (path === "/healthz") {
    const health = healthOf(snapshot());
    return Response.json(health.body, {
      status: health.ok ? 200 : 503,
      headers: { "cache-control": "no-store" },
    });
  }
  return new Response("not found: try /metrics or /healthz\n", { status: 404 });
}
