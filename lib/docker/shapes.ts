/**
 * Shape checks of the JSON the engine sends: the fields karotten reads, with the types it reads
 * them as. Valid JSON of the wrong shape (`{}` as the list, `[null]`, a numeric id) becomes a
 * `ShapeError` about that one item instead of a crash deeper down.
 * @module
 */
import { ShapeError } from "../errors.ts";
import type { ContainerInfo, ContainerSummary } from "./api.ts";
import type { DockerEvent } from "./event_stream.ts";

/** A container id as engines write it (64 hex digits; shorter forms accepted). */
const ID = /^[0-9a-zA-Z][0-9a-zA-Z_.-]{0,127}$/;

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A short description of a value's type for an error: `number`, `null`, `array`, ... */
function typeOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function fail(what: string, field: string, value: unknown): never {
  throw new ShapeError(what, `${field} is ${typeOf(value)}`);
}

function id(what: string, field: string, v: unknown): string {
  if (typeof v !== "string" || !ID.test(v)) {
    if (typeof v === "string") throw new ShapeError(what, `${field} is not a container id`);
    fail(what, field, v);
  }
  return v;
}

function optString(what: string, field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail(what, field, v);
  return v;
}

function labels(what: string, field: string, v: unknown): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) fail(what, field, v);
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== "string") fail(what, `${field}[${JSON.stringify(key)}]`, value);
  }
  return v as Record<string, string>;
}

/** The items of a `/containers/json` answer that have a usable shape, and why the others not. */
export interface CheckedList {
  /** Usable items. */
  items: ContainerSummary[];
  /** One reason per unusable item. */
  rejected: string[];
}

/** Checks a `/containers/json` answer: not an array -> `ShapeError`; bad items are set aside. */
export function checkContainerList(value: unknown): CheckedList {
  if (!Array.isArray(value)) fail("/containers/json", "the answer", value);
  const items: ContainerSummary[] = [];
  const rejected: string[] = [];
  value.forEach((item: unknown, i: number) => {
    try {
      items.push(checkSummary(item, `/containers/json item ${i}`));
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      rejected.push(err.message);
    }
  });
  return { items, rejected };
}

function checkSummary(v: unknown, what: string): ContainerSummary {
  if (!isObj(v)) fail(what, "the item", v);
  return {
    Id: id(what, "Id", v.Id),
    State: optString(what, "State", v.State),
  };
}

/** Checks a `/containers/{id}/json` answer; throws `ShapeError` naming the first bad field. */
export function checkContainerInfo(v: unknown, what: string): ContainerInfo {
  if (!isObj(v)) fail(what, "the answer", v);
  const state = v.State;
  if (!isObj(state)) fail(what, "State", state);
  if (typeof state.Running !== "boolean") fail(what, "State.Running", state.Running);
  const config = v.Config;
  if (!isObj(config)) fail(what, "Config", config);
  if (config.Tty !== undefined && typeof config.Tty !== "boolean") {
    fail(what, "Config.Tty", config.Tty);
  }
  if (typeof v.Name !== "string") fail(what, "Name", v.Name);
  const hostConfig = isObj(v.HostConfig) ? v.HostConfig : undefined;
  const logConfig = hostConfig && isObj(hostConfig.LogConfig) ? hostConfig.LogConfig : undefined;
  return {
    Id: id(what, "Id", v.Id),
    Name: v.Name,
    State: {
      Running: state.Running,
      Status: optString(what, "State.Status", state.Status),
      StartedAt: optString(what, "State.StartedAt", state.StartedAt),
      FinishedAt: optString(what, "State.FinishedAt", state.FinishedAt),
    },
    Config: {
      Image: optString(what, "Config.Image", config.Image) ?? "",
      Labels: labels(what, "Config.Labels", config.Labels),
      Tty: config.Tty === true,
    },
    HostConfig: {
      LogConfig: { Type: optString(what, "HostConfig.LogConfig.Type", logConfig?.Type) },
    },
  };
}

/** Checks one `/events` message; throws `ShapeError` naming the first bad field. */
export function checkEvent(v: unknown): DockerEvent {
  const what = "event";
  if (!isObj(v)) fail(what, "the message", v);
  const actor = v.Actor;
  if (!isObj(actor)) fail(what, "Actor", actor);
  return {
    Type: optString(what, "Type", v.Type),
    Action: optString(what, "Action", v.Action),
    Actor: { ID: id(what, "Actor.ID", actor.ID) },
    timeNano: typeof v.timeNano === "number" ? v.timeNano : undefined,
  };
}
