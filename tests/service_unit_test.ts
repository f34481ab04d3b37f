/** The example systemd unit: hardened enough that systemd's own audit rates it well. */
import assert from "node:assert/strict";
import { DEFAULT_MAX_CONTAINERS, FD_MARGIN } from "../lib/config.ts";
import { REPO_ROOT } from "./helpers/karotten.ts";

/** The worst overall exposure accepted (systemd-analyze: 0 safest, 10 most exposed). */
const MAX_EXPOSURE = 2.5;

const unitText = () => Deno.readTextFile(`${REPO_ROOT}karotten.service.example`);

Deno.test("karotten.service.example scores 2.5 or better in systemd-analyze security", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kt-unit." });
  try {
    await Deno.writeTextFile(`${dir}/karotten.service`, await unitText());
    const out = await new Deno.Command("systemd-analyze", {
      args: ["security", "--offline=yes", "--no-pager", `${dir}/karotten.service`],
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_COLORS: "0" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const m = text.match(/Overall exposure level for karotten\.service: ([0-9.]+)/);
    assert.ok(m, `no exposure level in systemd-analyze's output:\n${text}`);
    assert.ok(Number(m[1]) <= MAX_EXPOSURE, `exposure ${m[1]} > ${MAX_EXPOSURE}:\n${text}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("karotten.service.example has the hardening the daemon relies on", async () => {
  const text = await unitText();
  for (
    const line of [
      "SystemCallFilter=@system-service",
      "SystemCallErrorNumber=EPERM",
      "ProtectProc=invisible",
      "UMask=0077",
      "PrivateMounts=yes",
      "IPAddressDeny=any",
      "NoNewPrivileges=yes",
    ]
  ) assert.match(text, new RegExp(`^${line}$`, "m"), line);
  const nofile = text.match(/^LimitNOFILE=(\d+)$/m);
  assert.ok(nofile, "LimitNOFILE");
  assert.ok(
    Number(nofile[1]) >= DEFAULT_MAX_CONTAINERS + FD_MARGIN,
    `LimitNOFILE=${nofile[1]} leaves no room for ${DEFAULT_MAX_CONTAINERS} containers`,
  );
  assert.match(text, /root-equivalent/, "the docker-group caveat");
});
