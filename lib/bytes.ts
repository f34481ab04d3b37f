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
