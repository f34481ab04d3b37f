/**
 * The `kt/busybox:latest` image for the private test engines, and the check of what each needs.
 * @module
 */

/** The image every test engine has: busybox-static with all its applets, `CMD ["/bin/sh"]`. */
export const TEST_IMAGE = "kt/busybox:latest";

/** What a private engine of each kind needs on PATH beside the docker CLI and a static busybox. */
const ENGINE_TOOLS = {
  docker: ["dockerd", "containerd"],
  podman: ["podman", "conmon", "runc", "catatonit"],
} as const;

/** How to install what an engine needs (Debian packages), for the error message. */
const INSTALL_HINT = {
  docker: "apt-get install -y docker.io busybox-static",
  podman: "apt-get install -y podman catatonit docker.io busybox-static",
} as const;

let imageTarCache: Promise<Uint8Array> | undefined;

/**
 * The image tarball (busybox-static, a symlink per applet, `/tmp`), built once per process and
 * kept in memory (~2 MB); `docker import -` takes it on stdin.
 */
export function imageTar(): Promise<Uint8Array> {
  imageTarCache ??= buildImageTar().catch((err) => {
    imageTarCache = undefined;
    throw err;
  });
  return imageTarCache;
}

/** Builds the rootfs in a temp folder and tars it to memory. */
async function buildImageTar(): Promise<Uint8Array> {
  const busybox = await staticBusybox();
  const root = await Deno.makeTempDir({ dir: "/tmp", prefix: "kt-img." });
  try {
    await Deno.mkdir(`${root}/bin`);
    await Deno.mkdir(`${root}/usr`);
    await Deno.mkdir(`${root}/etc`);
    await Deno.mkdir(`${root}/tmp`);
    await Deno.chmod(`${root}/tmp`, 0o1777);
    await Deno.copyFile(busybox, `${root}/bin/busybox`);
    await Deno.chmod(`${root}/bin/busybox`, 0o755);
    await Deno.symlink("bin", `${root}/sbin`);
    await Deno.symlink("../bin", `${root}/usr/bin`);
    await Deno.symlink("../bin", `${root}/usr/sbin`);
    const list = await output(busybox, ["--list"]);
    const applets = list.split("\n").map((s) => s.trim()).filter((s) =>
      s !== "" && s !== "busybox"
    );
    if (applets.length === 0) throw new Error(`${busybox} --list printed no applets`);
    for (const applet of applets) await Deno.symlink("busybox", `${root}/bin/${applet}`);
    const tar = await new Deno.Command("tar", {
      args: ["-C", root, "--numeric-owner", "--owner=0", "--group=0", "-cf", "-", "."],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!tar.success) {
      throw new Error(`Cannot build the image tar: ${new TextDecoder().decode(tar.stderr)}`);
    }
    return tar.stdout;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Throws one Error naming every missing prerequisite of a private engine of `kind`. */
export async function checkPrerequisites(kind: "docker" | "podman"): Promise<void> {
  const missing: string[] = [];
  if (Deno.uid() !== 0) missing.push(`root (running as uid ${Deno.uid()})`);
  for (const tool of [...ENGINE_TOOLS[kind], "docker", "tar", "umount"]) {
    if (await findInPath(tool) === undefined) missing.push(`\`${tool}\` on PATH`);
  }
  try {
    await staticBusybox();
  } catch (err) {
    missing.push(err instanceof Error ? err.message : String(err));
  }
  if (missing.length > 0) {
    throw new Error(
      `A private ${kind} engine needs: ${missing.join("; ")}. ` +
        `Run as root after \`${INSTALL_HINT[kind]}\` (see .ci/run).`,
    );
  }
}

/** The path of a statically linked busybox (from busybox-static), or throws. */
async function staticBusybox(): Promise<string> {
  const path = await findInPath("busybox");
  if (path === undefined) throw new Error("`busybox` on PATH (package busybox-static)");
  if (await hasElfInterpreter(path)) {
    throw new Error(`a static busybox: ${path} is dynamically linked (install busybox-static)`);
  }
  return path;
}

/** True when the ELF64 file asks for a dynamic loader (a PT_INTERP program header). */
async function hasElfInterpreter(path: string): Promise<boolean> {
  const bytes = await Deno.readFile(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const isElf64Le = bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46 && bytes[4] === 2 && bytes[5] === 1;
  if (!isElf64Le) throw new Error(`${path} is not a 64-bit little-endian ELF file`);
  const phoff = Number(view.getBigUint64(0x20, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  const PT_INTERP = 3;
  for (let i = 0; i < phnum; i++) {
    if (view.getUint32(phoff + i * phentsize, true) === PT_INTERP) return true;
  }
  return false;
}

/** The first executable file `name` on PATH. */
async function findInPath(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      const info = await Deno.stat(`${dir}/${name}`);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return `${dir}/${name}`;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
        throw err;
      }
    }
  }
  return undefined;
}

/** Runs a command; returns its stdout, or throws with its stderr. */
async function output(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}
