/**
 * The containers the benchmark runs: busybox `sh -c` scripts that print numbered lines of an
 * exact size, all at once or at a paced rate.
 * @module
 */

/**
 * Prints `n` lines of exactly `lineBytes` bytes, newline included, as fast as the container
 * can: `000001 xxxx…`. `seq | sed` writes ~1 M lines/s here, far faster than anything read
 * from it. With `holdSeconds`, the container then keeps running that long: karotten gives a
 * follow stream only `dieGraceMs` (5 s) after the container died, which a backlog of a few
 * seconds behind a full buffer outlasts.
 */
export function burstScript(n: number, lineBytes: number, holdSeconds = 0): string {
  const width = String(n).length;
  const pad = lineBytes - 1 - width - 1; // newline, number, space
  if (pad < 1) throw new RangeError(`Cannot make lines of ${lineBytes} bytes: too short`);
  const burst = `seq -w 1 ${n} | sed 's/$/ ${"x".repeat(pad)}/'`;
  return holdSeconds > 0 ? `trap "exit 0" TERM; ${burst}; sleep ${holdSeconds}` : burst;
}

/**
 * Prints `perTick` numbered lines (`fan <tag> <seq> xxx…`, about `lineBytes` bytes), waits
 * `tickMs`, until `n` lines are out: `perTick * 1000 / tickMs` lines/s. The wait is a `read`
 * with a timeout on a fifo nobody writes (a builtin: `sleep` would fork a process per tick,
 * which costs more CPU than the lines). Exits 0 on SIGTERM.
 */
export function pacedScript(
  tag: string,
  n: number,
  perTick: number,
  tickMs: number,
  lineBytes: number,
): string {
  const pad = Math.max(1, lineBytes - `fan ${tag} ${n} `.length - 1);
  return `trap "exit 0" TERM; mkfifo /tmp/tick; exec 3<>/tmp/tick; i=1; pad=${"x".repeat(pad)}; ` +
    `while [ $i -le ${n} ]; do j=0; ` +
    `while [ $j -lt ${perTick} ] && [ $i -le ${n} ]; do echo "fan ${tag} $i $pad"; ` +
    `i=$((i+1)); j=$((j+1)); done; read -t ${tickMs / 1000} -u 3 _; done; exit 0`;
}

/** Parses a paced line (`fan <tag> <seq> …`) into its tag and sequence number, or undefined. */
export function parsePaced(message: string): { tag: string; seq: number } | undefined {
  const m = /^fan (\S+) (\d+) /.exec(message);
  return m ? { tag: m[1], seq: Number(m[2]) } : undefined;
}
