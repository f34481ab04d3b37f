/**
 * The short form of a container id.
 * @module
 */

/** Characters of a container id shown in logs, bodies and message ids. */
export const SHORT_ID_CHARS = 12;

/** The first 12 characters of a container id, as `docker ps` shows it. */
export function shortId(id: string): string {
  return id.slice(0, SHORT_ID_CHARS);
}
