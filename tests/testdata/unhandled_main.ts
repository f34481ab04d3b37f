/**
 * A stand-in for `main.ts` with the daemon's last resort installed, which then leaves a rejected
 * promise unhandled (`KT_CRASH=rejection`) or throws from a timer (`KT_CRASH=exception`).
 * @module
 */
import { installLastResort } from "../../lib/last_resort.ts";
import { createLogger } from "../../lib/log.ts";

const url = Deno.env.get("RABBITMQ_URL") ?? "";
installLastResort(createLogger({ urls: [url] }));
if (Deno.env.get("EXCHANGE") === "exception") {
  setTimeout(() => {
    throw new Error(`thrown from a timer, ${url}`);
  }, 1);
} else {
  Promise.reject(new TypeError(`left unhandled, ${url}`));
}
setInterval(() => {}, 1 << 30);
