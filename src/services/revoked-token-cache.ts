/**
 * Revocation state of JWT access tokens kept in each replica, so the API's bearer check stops asking the
 * database on every request (one query per request capped decisions at a few thousand a second).
 *
 * Consistency contract (the same as the client cache, services/client-cache.ts): triggers on
 * `oidc_revoked_tokens` and `oidc_revoked_grants` send a NOTIFY on REVOCATIONS_CHANNEL for every revoked `jti`
 * and every grant tombstone, whoever writes them (revocation endpoint, grant revocation by the adapter, logout,
 * password reset, an operator's SQL); it is delivered on commit to every replica, which adds it to its revoked
 * set until the row's own expiry. So a revocation on one replica is refused on every other within the
 * notification's delivery time.
 * - A token's "not revoked" answer is asked of the database once per replica and remembered; the revoked set is
 *   consulted before any remembered answer, so a query racing a revocation can never hide it once notified.
 * - An answer from a query that started before the subscription was lost or restored is not remembered (epoch).
 * - While the subscription is down every check reads the database: a replica that may have missed a
 *   notification cannot trust what it remembers. It starts again empty once LISTEN is back.
 * - A revocation written through `queries` (the revocation endpoint) is applied here at once, so this replica
 *   refuses the token from its next request; grant tombstones written elsewhere (the adapter, logout) reach it,
 *   like every other replica, by notification.
 * - Bounded: remembered answers are evicted oldest first; a revoked set that outgrows its bound is dropped with
 *   every remembered answer (the database answers again), never trimmed.
 * @see RFC 7009 §2.1
 */
import type { Database } from '../db/client.js';
import type { RevocableToken, RevokedTokenQueries } from '../queries/revoked-tokens.js';

export const REVOCATIONS_CHANNEL = 'keryu_revocations';

/** Remembered "not revoked" answers: about one per token in use (each client's current token, each user's). */
const MAX_CHECKED = 10_000;
/** Revocations still unexpired; about 100 bytes each. A burst beyond this is answered by the database instead. */
const MAX_REVOKED = 100_000;

export interface RevokedTokenCache {
  /** Revoked-token queries whose check is answered from the cache and whose writes update it on commit. */
  readonly queries: RevokedTokenQueries;
  /** Whether the token, or the grant it was issued under, is revoked. */
  isRevoked(token: RevocableToken): Promise<boolean>;
  /** Applies one notification: `j <exp> <jti>` or `g <exp> <grant id>` (exp in seconds); anything else drops all. */
  notified(payload: string): void;
  /** Whether notifications are flowing (when false, every check goes to the database). */
  readonly live: boolean;
  setLive(live: boolean): void;
  readonly size: { revoked: number; checked: number };
}

const jtiKey = (jti: string) => `j ${jti}`;
const grantKey = (grantId: string) => `g ${grantId}`;

export function createRevokedTokenCache(queries: RevokedTokenQueries, now: () => number = Date.now): RevokedTokenCache {
  /** Revoked jti and grant keys → when the revocation row expires (ms). */
  const revoked = new Map<string, number>();
  /** Tokens the database said were not revoked → the epoch of that answer. */
  const checked = new Map<string, number>();
  let epoch = 0;
  let live = false;

  function reset() {
    epoch++;
    revoked.clear();
    checked.clear();
  }

  const knownRevoked = (token: RevocableToken) => revoked.has(jtiKey(token.jti)) || (token.grantId !== undefined && revoked.has(grantKey(token.grantId)));

  function addRevoked(key: string, expiresAtMs: number) {
    if (revoked.size >= MAX_REVOKED) {
      const t = now();
      for (const [k, exp] of revoked) if (exp <= t) revoked.delete(k);
      if (revoked.size >= MAX_REVOKED) return reset();
    }
    revoked.set(key, expiresAtMs);
  }

  async function isRevoked(token: RevocableToken): Promise<boolean> {
    if (!live) return queries.isAccessTokenRevoked(token);
    if (knownRevoked(token)) return true;
    const key = `${token.jti}\n${token.grantId ?? ''}`;
    if (checked.get(key) === epoch) return false;
    const started = epoch;
    if (await queries.isAccessTokenRevoked(token)) return true;
    // A notification may have arrived while the query ran: it wins over the answer.
    if (knownRevoked(token)) return true;
    if (live && epoch === started) {
      if (checked.size >= MAX_CHECKED) checked.delete(checked.keys().next().value as string);
      checked.set(key, started);
    }
    return false;
  }

  return {
    queries: {
      ...queries,
      isAccessTokenRevoked: isRevoked,
      async insertRevokedToken(input) {
        await queries.insertRevokedToken(input);
        if (live) addRevoked(jtiKey(input.jti), input.expiresAt.getTime());
      },
    },
    isRevoked,
    notified(payload) {
      const match = /^([jg]) (\d+) (.+)$/s.exec(payload);
      if (!match) return reset();
      const [, kind, exp, id] = match as unknown as [string, 'j' | 'g', string, string];
      addRevoked(kind === 'j' ? jtiKey(id) : grantKey(id), Number(exp) * 1000);
    },
    get live() {
      return live;
    },
    setLive(value) {
      // What was remembered before the connection dropped may have missed notifications.
      reset();
      live = value;
    },
    get size() {
      return { revoked: revoked.size, checked: checked.size };
    },
  };
}

/**
 * Keeps the cache in step with every replica's revocations through the database's LISTEN/NOTIFY subscription
 * (the one connection the client and decision caches share). While the subscription is down the cache is not used.
 */
export async function syncRevokedTokenCache(
  cache: RevokedTokenCache,
  database: Pick<Database, 'listen'>,
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
): Promise<() => Promise<void>> {
  let wasDown = false;
  const stop = await database.listen(REVOCATIONS_CHANNEL, {
    onNotify: (payload) => cache.notified(payload),
    onUp: () => {
      cache.setLive(true);
      if (wasDown) log.info({ channel: REVOCATIONS_CHANNEL }, 'revocation notifications restored; revocation cache live again');
    },
    onDown: () => {
      wasDown = true;
      cache.setLive(false);
      log.warn({ channel: REVOCATIONS_CHANNEL }, 'revocation notifications lost; checking revocations in the database until they return');
    },
  });
  return async () => {
    cache.setLive(false);
    await stop();
  };
}
