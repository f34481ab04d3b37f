/**
 * The `/healthz` rule: healthy while the engine answers pings and either the broker is connected
 * or the buffer is below 90 % full (a short broker outage is absorbed by the buffer).
 * @module
 */
import type { Snapshot } from "./snapshot.ts";

/** Buffer fill at and above which a broker outage makes karotten unhealthy. */
export const UNHEALTHY_BUFFER_FILL = 0.9;

/** The verdict and the JSON body `/healthz` answers with. */
export interface Health {
  /** 200 when true, else 503. */
  ok: boolean;
  /** The body: status, reason when unhealthy, and the inputs of the rule. */
  body: {
    status: "ok" | "unhealthy";
    reason?: string;
    engine: "up" | "down";
    broker: "connected" | "disconnected";
    buffer_fill: number;
  };
}

/** Applies the rule to a snapshot. */
export function healthOf(s: Snapshot): Health {
  const fill = s.bufferCapacity > 0 ? s.bufferMessages / s.bufferCapacity : 0;
  let reason: string | undefined;
  if (!s.engineUp) reason = "docker engine does not answer pings";
  else if (!s.brokerConnected && fill >= UNHEALTHY_BUFFER_FILL) {
    reason = `broker disconnected and buffer ${Math.floor(fill * 100)} % full`;
  }
  return {
    ok: reason === undefined,
    body: {
      status: reason === undefined ? "ok" : "unhealthy",
      ...(reason === undefined ? {} : { reason }),
      engine: s.engineUp ? "up" : "down",
      broker: s.brokerConnected ? "connected" : "disconnected",
      buffer_fill: Math.round(fill * 1000) / 1000,
    },
  };
}
