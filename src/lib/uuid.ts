/**
 * The one UUID check: an id from a URL or a body is tested before it reaches a `uuid` column, so a malformed
 * one answers "not found" instead of a database cast error. Any version (RFC 9562 §4), case-insensitive.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
