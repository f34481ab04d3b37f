/**
 * A stand-in for `main.ts`, used only by `helpers_test.ts` to prove `startKarotten`: it logs like
 * the daemon (`<ISO time> <level> <event> key=value`), reports whether the permission flags hold
 * (an env var outside the allow list must not be granted), and stops on SIGTERM.
 * @module
 */
const log = (level: string, event: string, fields = "") =>
  console.error(`${new Date().toISOString()} ${level} ${event}${fields ? ` ${fields}` : ""}`);

const home = Deno.permissions.querySync({ name: "env", variable: "HOME" }).state;
const url = Deno.permissions.querySync({ name: "env", variable: "RABBITMQ_URL" }).state;
log("info", "permissions", `env_home=${home} env_rabbitmq_url=${url}`);
console.log("plain stdout line\r");
log("info", "ready", `containers=0 exchange=${Deno.env.get("EXCHANGE") ?? "-"}`);
Deno.addSignalListener("SIGTERM", () => {
  log("info", "stopping", "reason=SIGTERM");
  Deno.exit(0);
});
if (Deno.env.get("EXCHANGE") === "exit-now") Deno.exit(7);
// Keeps running until a signal comes.
setInterval(() => {}, 1 << 30);
