/**
 * Byte helpers shared by the decoders.
 * @module
 */

/** Joins byte pieces into one array; a single piece is returned as is (no copy). */
export function concatBytes(pieces: readonly Uint8Array[], size?: number): Uint8Array {
  if (pieces.length === 1) return pieces[0];
  let total = size ?? 0;
  if (size === undefined) { for (const p of pieces) total += p.length; }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bytes as Latin-1 text (each byte one character): for protocol text and error samples. */
export function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return s;
}
