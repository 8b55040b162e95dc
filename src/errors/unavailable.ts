/**
 * Recognises "the database cannot answer now" among errors, however they arrive: from postgres-js directly
 * (a network or driver code), from PostgreSQL (an SQLSTATE), or wrapped by drizzle ("Failed query", the
 * driver error as its `cause`). Such a failure is the server's state, not the request's fault: it is
 * answered 503 with Retry-After (RFC 9110 §15.6.4), never 500.
 */

/** What a refused client is told to wait: the driver reconnects on the next query, so a short wait is enough. */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

/** postgres-js and Node network codes for a connection that could not be opened or was lost. */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs meaning "not now": class 08 (connection exception), 57P01-57P03 (the server is shutting
 * down, crashed, or cannot accept connections yet), 53300 (too many connections), 57014 (cancelled by our
 * statement timeout), 25006 (a read-only standby after a failover).
 */
const UNAVAILABLE_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '53300', '57014', '25006']);

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (CONNECTION_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08'))) return true;
    // A failed connect to several addresses (IPv4 and IPv6) arrives as an AggregateError of network errors.
    if (e instanceof AggregateError && e.errors.some((inner) => isDatabaseUnavailable(inner))) return true;
  }
  return false;
}
