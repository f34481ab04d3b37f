/**
 * A TCP proxy a test controls, in front of the real broker: plain, or TLS-terminating with a
 * certificate made by `makeCerts` (optionally asking for a client certificate). A test starts
 * it on a chosen port ("the broker comes up"), stops it with every connection cut ("the broker
 * goes away"), and counts the connections it accepted (attempts, seen from the broker's side).
 * @module
 */
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
  /** Stops listening and cuts every open connection; resolves once all are closed. */
  stop(): Promise<void>;
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
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const forward = (client: net.Socket) => {
    const upstream = net.connect(opts.target.port, opts.target.host);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
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
