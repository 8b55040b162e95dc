/**
 * Ending sessions and tokens: one of them (revocation endpoint, RFC 7009; logout; the owner's list), and
 * every sign-in of a user at once (`endAllSignIns`), the one way that logout everywhere, a password change
 * or reset and a compromise report end them.
 */
import { addSeconds, systemClock } from '../../lib/clock.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { AuditEvent } from '../audit.js';
import { createAuthTokenQueries, createRefreshTokenQueries, type AuthTokenRow } from '../../queries/auth-tokens.js';
import { createOidcSessionQueries } from '../../queries/oidc-sessions.js';
import { createOneTimeSecretQueries } from '../../queries/one-time-secrets.js';
import { findBrowserSession, type BrowserSessionRef } from './browser-session.js';
import { PERSONAL_TOKEN_PREFIX, type AuditRecorder, type SessionServiceDeps } from './model.js';

/** Why every sign-in of a user ended (the `reason` of the audit event). */
export type EndAllSignInsReason = 'logout_all' | 'password_change' | 'password_reset' | 'compromise_reported' | 'admin_ended' | 'mfa_reset';

export function createRevocation(deps: SessionServiceDeps, record: AuditRecorder) {
  const { db, clock, config } = deps;
  const tokens = createAuthTokenQueries(db);
  const refreshTokens = createRefreshTokenQueries(db);
  const oidc = createOidcSessionQueries(db);
  const challenges = createOneTimeSecretQueries(db);

  /** Ends one row of the list, with what the provider holds for it. Answers whether it was active. */
  async function revokeToken(row: Pick<AuthTokenRow, 'id' | 'kind' | 'reference'>, now: Date): Promise<boolean> {
    const changed = await tokens.revokeToken(row.id, now);
    if (row.kind === 'oidc_grant' && row.reference) await oidc.revokeGrants([row.reference], addSeconds(now, config.tombstoneTtl));
    if (row.kind === 'oidc_session' && row.reference) await oidc.deleteOidcSession(row.reference);
    if (row.kind === 'session') await refreshTokens.clearRetryResponsesBySession(row.id);
    return changed;
  }

  /** A session or personal token ended because it was presented at the revocation endpoint (RFC 7009). */
  async function revokePresented(row: Pick<AuthTokenRow, 'id' | 'userId' | 'kind' | 'reference'>, now: Date, context: RequestContext | undefined): Promise<void> {
    await revokeToken(row, now);
    const session = row.kind === 'session';
    record({
      type: session ? 'session.revoked' : 'token.revoked',
      outcome: 'success',
      actor: { type: 'user', id: row.userId },
      subject: { type: session ? 'session' : 'token', id: row.id },
      context,
      details: { reason: 'token_revocation' },
    });
  }

  /**
   * Ends every sign-in of a user: sign-ins still waiting for a step (they passed a password no longer
   * trusted), first-party sessions and their refresh tokens, personal tokens (a stolen session must not
   * leave a lasting credential behind), browser SSO sessions and app grants, including provider state
   * written back a moment later (`sessions_valid_after`). The caller's own session is kept: a first-party
   * one by `exceptSessionId`, or a browser SSO session by `exceptBrowserSession` (with its grant for that
   * client, which the caller signed in through; other apps' grants end, even in that browser).
   * Answers how many sessions and tokens were revoked.
   */
  async function endAllSignIns(
    userId: string,
    options: {
      reason: EndAllSignInsReason;
      exceptSessionId?: string | undefined;
      exceptBrowserSession?: BrowserSessionRef | undefined;
      /** Who ended them when not the user (an administrator): the audit event names them. */
      actor?: AuditEvent['actor'] | undefined;
    },
    context?: RequestContext,
  ): Promise<number> {
    const now = clock();
    const browser = options.exceptBrowserSession ? await findBrowserSession(db, userId, options.exceptBrowserSession, now) : undefined;
    const kept = [options.exceptSessionId, browser?.sessionEntryId, browser?.grantEntryId].filter((id): id is string => id !== undefined);
    await challenges.consumeLoginChallengesByUser(userId, now);
    const revoked = await tokens.revokeTokensByUser(userId, ['session', 'personal', 'oidc_session', 'oidc_grant'], now, kept);
    await refreshTokens.clearRetryResponsesOfSessions(revoked.filter((r) => r.kind === 'session').map((r) => r.id));
    // Everything the provider holds for the account, mirrored or not, but the kept browser session.
    const keep = browser ? { sessionId: browser.sessionId, grantIds: browser.grantId ? [browser.grantId] : [] } : undefined;
    // `sessions_valid_after` is compared with the `loginTs` oidc-provider stamps on its sessions, which comes from
    // the system clock, not from the services' clock: the cut-off must be on the provider's time base (a services
    // clock set ahead would otherwise also end the sessions signed in after this call).
    await oidc.revokeOidcStateByAccount(userId, addSeconds(now, config.tombstoneTtl), systemClock(), keep);
    record({
      type: 'session.revoked',
      outcome: 'success',
      actor: options.actor ?? { type: 'user', id: userId },
      subject: { type: 'user', id: userId },
      context,
      details: { reason: options.reason, count: revoked.length, kept: options.exceptSessionId ?? browser?.sessionEntryId },
    });
    return revoked.length;
  }

  function recordLogout(userId: string, sessionId: string | undefined, all: boolean, context: RequestContext | undefined): void {
    record({
      type: 'logout',
      outcome: 'success',
      actor: { type: 'user', id: userId },
      subject: sessionId ? { type: 'session', id: sessionId } : undefined,
      context,
      details: { all_sessions: all },
    });
  }

  return {
    revokeToken,
    endAllSignIns,

    /**
     * RFC 7009 revocation of a first-party access token: its session ends (the token alone already allows
     * that through logout). Answers whether a session was ended; an invalid or dead token changes nothing.
     */
    async revokeByAccessToken(token: string, context?: RequestContext): Promise<boolean> {
      const now = clock();
      const claims = await deps.accessTokens().verify(token, now);
      if (!claims) return false;
      const row = await tokens.findUserTokenById(claims.sub, claims.sid);
      if (!row || row.kind !== 'session' || !row.isActive) return false;
      await revokePresented(row, now, context);
      return true;
    },

    /** Revokes a personal token presented at the revocation endpoint (RFC 7009); false when it is not a live one. */
    async revokePersonalTokenByValue(token: string, context?: RequestContext): Promise<boolean> {
      if (!token.startsWith(PERSONAL_TOKEN_PREFIX)) return false;
      const now = clock();
      const row = await tokens.findPersonalTokenByDigests(deps.tokenDigest.candidates(token));
      if (!row || !row.isActive) return false;
      await revokePresented(row, now, context);
      return true;
    },

    /** Ends the caller's session (or token), or with `all` every sign-in of the user (`endAllSignIns`). */
    async logout(principal: { userId: string; sessionId?: string | undefined }, all: boolean, context?: RequestContext): Promise<void> {
      const now = clock();
      if (all) {
        await endAllSignIns(principal.userId, { reason: 'logout_all' }, context);
      } else if (principal.sessionId) {
        const row = await tokens.findUserTokenById(principal.userId, principal.sessionId);
        if (row) await revokeToken(row, now);
      }
      recordLogout(principal.userId, principal.sessionId, all, context);
    },

    /**
     * "Sign out everywhere else" from a browser (the account pages): every sign-in of the user ends as in
     * `logout` with `all`, and is audited the same, but the browser SSO session that issued `sid` to the
     * caller's client stays. Answers how many sessions and tokens were revoked.
     */
    async logoutEverywhereElse(userId: string, current: BrowserSessionRef, context?: RequestContext): Promise<number> {
      const count = await endAllSignIns(userId, { reason: 'logout_all', exceptBrowserSession: current }, context);
      const kept = await findBrowserSession(db, userId, current, clock());
      recordLogout(userId, kept?.sessionEntryId, true, context);
      return count;
    },
  };
}
export type Revocation = ReturnType<typeof createRevocation>;
