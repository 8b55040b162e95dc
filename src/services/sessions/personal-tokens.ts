/**
 * Personal API tokens: created by a recently signed-in session, scoped to the API's scopes, stored only as
 * a keyed digest. Authenticating, listing and revoking them are the other session modules' work.
 */
import { AppError } from '../../errors/index.js';
import { addSeconds } from '../../lib/clock.js';
import { randomToken } from '../../lib/crypto.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createAuthTokenQueries } from '../../queries/auth-tokens.js';
import { API_SCOPES, isApiScope } from '../api-scopes.js';
import { PERSONAL_TOKEN_PREFIX, tokenView, type AuditRecorder, type SessionServiceDeps, type TokenView } from './model.js';
import type { SignInProof } from '../recent-sign-in.js';

export function createPersonalTokens(deps: SessionServiceDeps, record: AuditRecorder) {
  const { clock, config } = deps;
  const tokens = createAuthTokenQueries(deps.db);

  return {
    /**
     * A personal token may do only what its scopes (the API's scopes, services/api-scopes.ts) name, and only
     * while its owner holds the permission. Creating one needs a recent sign-in: a stolen session (or one left
     * open) must not turn itself into a year-long credential.
     */
    async createPersonalToken(
      principal: { userId: string; signIn: SignInProof },
      input: { name: string; expiresIn?: number | undefined; scopes?: string[] | undefined },
      context?: RequestContext,
    ): Promise<TokenView & { token: string }> {
      const now = clock();
      const userId = principal.userId;
      const unknown = (input.scopes ?? []).filter((scope) => !isApiScope(scope));
      if (unknown.length) {
        throw new AppError('invalid_scope', `unknown scope ${unknown.join(', ')}; scopes are ${API_SCOPES.join(', ')}`, 400, { scopes: API_SCOPES });
      }
      const signIn = await deps.recentSignIn.recent(userId, principal.signIn);
      if (!signIn) {
        throw new AppError('reauthentication_required', `sign in again: a personal token can be created only within ${deps.recentSignIn.maxAge} seconds of signing in`, 403, {
          max_age: deps.recentSignIn.maxAge,
        });
      }
      const ttl = input.expiresIn ?? config.personalTokenTtl;
      if (ttl > config.personalTokenMaxTtl) {
        throw new AppError('invalid_expiry', `expires_in must be at most ${config.personalTokenMaxTtl} seconds`, 400, { max_expires_in: config.personalTokenMaxTtl });
      }
      const value = `${PERSONAL_TOKEN_PREFIX}${randomToken()}`;
      const row = await tokens.insertToken({
        userId,
        kind: 'personal',
        name: input.name,
        tokenHash: deps.tokenDigest.stored(value),
        deviceInfo: {},
        ipAddress: context?.ip ?? null,
        scopes: [...new Set(input.scopes ?? [])],
        // The token proves what the session's sign-in proved, no more.
        amr: signIn.amr,
        createdAt: now,
        expiresAt: addSeconds(now, ttl),
      });
      record({ type: 'token.created', outcome: 'success', actor: { type: 'user', id: userId }, subject: { type: 'token', id: row.id }, context, details: { name: input.name, scopes: row.scopes, expires_at: row.expiresAt?.toISOString() } });
      return { ...tokenView(row, now, undefined), token: value };
    },
  };
}
