/**
 * Certificates for TLS tests, made with `openssl` in a temporary folder: a CA, a second CA that
 * signed nothing the proxy shows, a server certificate for `localhost`, one for another name, and
 * a client certificate, all signed by the first CA.
 * @module
 */

/** Paths (PEM files) and their text. */
export interface TestCerts {
  /** The folder holding them; `remove()` deletes it. */
  readonly dir: string;
  /** CA that signed the server and client certificates. */
  readonly caFile: string;
  /** A CA that signed neither. */
  readonly otherCaFile: string;
  /** Server certificate for the name `localhost`. */
  readonly serverCertFile: string;
  /** Its key. */
  readonly serverKeyFile: string;
  /** Server certificate for `broker.invalid` only (a name mismatch for `localhost`). */
  readonly otherNameCertFile: string;
  /** Its key. */
  readonly otherNameKeyFile: string;
  /** Client certificate, subject CN `karotten-test`. */
  readonly clientCertFile: string;
  /** Its key. */
  readonly clientKeyFile: string;
  /** Reads one of the files above. */
  read(path: string): string;
  /** Deletes the folder. */
  remove(): Promise<void>;
}

/** The subject CN of the client certificate. */
export const CLIENT_CN = "karotten-test";

/** Runs `openssl args…` in `dir`; throws with its output when it fails (missing: loudly). */
async function openssl(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** Makes a fresh set in a new temporary folder. */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "kt-certs-" });
  try {
    const ca = async (name: string, cn: string) => {
      await openssl(
        dir,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        `/CN=${cn}`,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.pem`,
      );
    };
    const leaf = async (name: string, cn: string, ext: string) => {
      await openssl(
        dir,
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        `/CN=${cn}`,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
      );
      await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
      await openssl(
        dir,
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.pem`,
      );
    };
    await ca("ca", "karotten test CA");
    await ca("other-ca", "another CA");
    await leaf("server", "localhost", "subjectAltName=DNS:localhost\n");
    await leaf("other-name", "broker.invalid", "subjectAltName=DNS:broker.invalid\n");
    await leaf("client", CLIENT_CN, "extendedKeyUsage=clientAuth\n");
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    otherCaFile: `${dir}/other-ca.pem`,
    serverCertFile: `${dir}/server.pem`,
    serverKeyFile: `${dir}/server.key`,
    otherNameCertFile: `${dir}/other-name.pem`,
    otherNameKeyFile: `${dir}/other-name.key`,
    clientCertFile: `${dir}/client.pem`,
    clientKeyFile: `${dir}/client.key`,
    read: (path) => Deno.readTextFileSync(path),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
