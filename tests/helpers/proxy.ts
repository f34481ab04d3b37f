/**
 * A TCP proxy a test controls, in front of the real broker: plain, or TLS-terminating with a
 * certificate made by `makeCerts` (optionally asking for a client certificate). A test starts
 * it on a chosen port ("the broker comes up"), stops it with every connection cut ("the broker
 * goes away"), and counts the connections it accepted (attempts, seen from the broker's side).
 *
 * With `stallChannels` it plays a half-answering broker: towards the client it forwards the
 * frames of channel 0 (the connection's handshake, heartbeats, close) and withholds every frame
 * on another channel (channel.open-ok, exchange.declare-ok, ...), so the connection opens and
 * stays alive while nothing opened on it is ever answered.
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";

/** TLS set-up of a TLS-terminating proxy (PEM text). */
export interface ProxyTls {
  /** Server certificate chain. */
  cert: string;
  /** Its key. */
  key: string;
  /** With `requestCert`: the CA a client certificate must be signed by. */
  ca?: string;
  /** Ask the client for a certificate (and record its subject CN). @default false */
  requestCert?: boolean;
}

/** Options of `startProxy`. */
export interface ProxyOptions {
  /** Where connections go. */
  target: { host: string; port: number };
  /** Listen port on 127.0.0.1. @default a free port */
  port?: number;
  /** Terminate TLS with this; plain TCP without it. */
  tls?: ProxyTls;
  /** Withhold the broker's frames on channels other than 0 (see the module doc). @default false */
  stallChannels?: boolean;
}

/** A running proxy. */
export interface Proxy {
  /** The port it listens on. */
  readonly port: number;
  /** Connections accepted so far (TLS: handshakes completed or failed both count). */
  readonly accepted: number;
  /** Connections currently open. */
  readonly open: number;
  /** The subject CN of every client certificate presented, in order. */
  readonly clientCertificates: string[];
  /** Whether connections accepted from now on stall (see `ProxyOptions.stallChannels`). */
  stallChannels: boolean;
  /** Stalling connections on which a frame was withheld. */
  readonly stalled: number;
  /**
   * Stalling connections the client closed: the broker answered its connection.close with
   * close-ok (forwarded, as every frame of channel 0).
   */
  readonly closedByClient: number;
  /** Stops listening and cuts every open connection; resolves once all are closed. */
  stop(): Promise<void>;
}

/** An AMQP 0-9-1 frame: type (1 byte), channel (2, big-endian), payload size (4), payload, 0xCE. */
const FRAME_HEAD_BYTES = 7;
const FRAME_END_BYTES = 1;
/** A method frame's type; its payload starts with the class id and method id (2 bytes each). */
const METHOD_FRAME = 1;
/** connection.close-ok: class 10 (connection), method 51. */
const CONNECTION_CLASS = 10;
const CLOSE_OK_METHOD = 51;

/** Splits the broker's bytes into frames, whole or torn across reads, and keeps channel 0's. */
export class ChannelZeroFilter {
  /** Frames withheld so far. */
  withheld = 0;
  /** Whether a connection.close-ok went through. */
  closeOk = false;
  #pending = Buffer.alloc(0);

  /** The frames of channel 0 that `chunk` completes, in order; the rest is withheld. */
  push(chunk: Buffer): Buffer[] {
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const keep: Buffer[] = [];
    while (buf.length >= FRAME_HEAD_BYTES) {
      const end = FRAME_HEAD_BYTES + buf.readUInt32BE(3) + FRAME_END_BYTES;
      if (buf.length < end) break;
      const frame = buf.subarray(0, end);
      buf = buf.subarray(end);
      if (frame.readUInt16BE(1) !== 0) {
        this.withheld++;
        continue;
      }
      keep.push(frame);
      if (
        frame[0] === METHOD_FRAME && frame.length >= FRAME_HEAD_BYTES + 4 &&
        frame.readUInt16BE(FRAME_HEAD_BYTES) === CONNECTION_CLASS &&
        frame.readUInt16BE(FRAME_HEAD_BYTES + 2) === CLOSE_OK_METHOD
      ) this.closeOk = true;
    }
    this.#pending = Buffer.from(buf);
    return keep;
  }
}

/** A port on 127.0.0.1 that nothing listens on right now (connections to it are refused). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts a proxy on 127.0.0.1; see the module doc. */
export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  const clientCertificates: string[] = [];
  let accepted = 0;
  let stallChannels = opts.stallChannels ?? false;
  const filters: ChannelZeroFilter[] = [];
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const forward = (client: net.Socket) => {
    const upstream = net.connect(opts.target.port, opts.target.host);
    track(upstream);
    client.pipe(upstream);
    if (stallChannels) {
      const filter = new ChannelZeroFilter();
      filters.push(filter);
      upstream.on("data", (chunk: Buffer) => {
        for (const frame of filter.push(chunk)) client.write(frame);
      });
      upstream.on("end", () => client.end());
    } else {
      upstream.pipe(client);
    }
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  };
  let server: net.Server;
  if (opts.tls) {
    const t = opts.tls;
    server = tls.createServer({
      cert: t.cert,
      key: t.key,
      ca: t.ca === undefined ? undefined : [t.ca],
      requestCert: t.requestCert ?? false,
      rejectUnauthorized: false,
    }, (socket) => {
      const subject = socket.getPeerCertificate()?.subject as { CN?: string } | undefined;
      if (subject?.CN !== undefined) clientCertificates.push(subject.CN);
      forward(socket);
    });
    server.on("connection", (raw: net.Socket) => {
      accepted++;
      track(raw);
    });
    server.on("tlsClientError", (_err: Error, socket: net.Socket) => socket.destroy());
  } else {
    server = net.createServer((socket) => {
      accepted++;
      track(socket);
      forward(socket);
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    clientCertificates,
    get stallChannels() {
      return stallChannels;
    },
    set stallChannels(on: boolean) {
      stallChannels = on;
    },
    get stalled() {
      return filters.filter((f) => f.withheld > 0).length;
    },
    get closedByClient() {
      return filters.filter((f) => f.closeOk).length;
    },
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const gone = [...sockets].map((s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) return resolve();
          s.once("close", () => resolve());
          s.destroy();
        })
      );
      await Promise.all([closed, ...gone]);
    },
  };
}
