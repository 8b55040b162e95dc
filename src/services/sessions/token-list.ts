/**
 * The owner's list of everything they are signed in with (first-party sessions, personal tokens, browser
 * sessions and app grants), paged by the API's cursor convention; renaming, re-dating, revoking and deleting
 * one entry. Someone else's id answers 404 and changes nothing.
 */
import { AppError } from '../../errors/index.js';
import { addSeconds } from '../../lib/clock.js';
import { decodeTimeCursor, toPage } from '../../lib/pagination.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createAuthTokenQueries, type AuthTokenRow } from '../../queries/auth-tokens.js';
import { findBrowserSession, type BrowserSessionRef } from './browser-session.js';
import { tokenView, type AuditRecorder, type SessionServiceDeps, type TokenView } from './model.js';
import type { Revocation } from './revocation.js';

export function createTokenList(deps: SessionServiceDeps, record: AuditRecorder, revocation: Pick<Revocation, 'revokeToken'>) {
  const { clock, config } = deps;
  const tokens = createAuthTokenQueries(deps.db);

  return {
    /**
     * Newest first; the cursor is the last row's (created_at with the database's microseconds, id). `kinds`
     * narrows the list (the account pages' personal tokens); with `active`, only what still works (the account
     * pages list where the user is signed in).
     */
    async listTokens(userId: string, currentId: string | undefined, page: { limit: number; cursor?: string | undefined; active?: boolean | undefined; kinds?: Array<AuthTokenRow['kind']> | undefined }) {
      const now = clock();
      const rows = await tokens.listTokensByUser(userId, page.limit + 1, decodeTimeCursor(page.cursor), { kinds: page.kinds, activeAt: page.active ? now : undefined });
      const { items, next_cursor } = toPage(rows, page.limit, (row) => ({ key: row.cursorKey, id: row.id }));
      return { items: items.map((row) => tokenView(row, now, currentId)), next_cursor };
    },

    /** One entry of the owner's list; another user's id finds nothing, like an unknown one. */
    async findToken(userId: string, id: string, currentId: string | undefined): Promise<TokenView | undefined> {
      const row = await tokens.findUserTokenById(userId, id);
      return row ? tokenView(row, clock(), currentId) : undefined;
    },

    /** The list entry of the browser SSO session that issued `sid` to a client (the account pages' "this device"). */
    async findBrowserSessionEntryId(userId: string, ref: BrowserSessionRef): Promise<string | undefined> {
      return (await findBrowserSession(deps.db, userId, ref, clock()))?.sessionEntryId;
    },

    async updateToken(
      userId: string,
      id: string,
      patch: { name?: string | undefined; isActive?: boolean | undefined; expiresAt?: Date | undefined },
      currentId: string | undefined,
      context?: RequestContext,
    ): Promise<TokenView> {
      const now = clock();
      const row = await tokens.findUserTokenById(userId, id);
      if (!row) throw new AppError('not_found', 'no such token', 404);
      if (patch.expiresAt !== undefined) {
        if (row.kind !== 'personal') throw new AppError('invalid_expiry', 'only a personal token\'s expiry can be changed', 400);
        const max = addSeconds(row.createdAt, config.personalTokenMaxTtl);
        if (patch.expiresAt > max || patch.expiresAt <= now) {
          throw new AppError('invalid_expiry', `expires_at must be in the future and no later than ${max.toISOString()}`, 400, { max_expires_at: max.toISOString() });
        }
      }
      // Deactivating is revoking, for good: a revoked token (by its owner, "log out all", a password change or
      // reset, a compromise report) would otherwise come back by a PUT from any session.
      if (patch.isActive === true && !row.isActive) {
        throw new AppError('conflict', row.kind === 'personal' ? 'a revoked token cannot be reactivated; create a new one' : 'a revoked session cannot be reactivated; sign in again', 409);
      }
      if (patch.isActive === false && row.isActive) await revocation.revokeToken(row, now);
      const changes = {
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.expiresAt !== undefined ? { expiresAt: patch.expiresAt } : {}),
      };
      const updated = Object.keys(changes).length ? await tokens.updateUserToken(userId, id, changes) : await tokens.findUserTokenById(userId, id);
      if (!updated) throw new AppError('not_found', 'no such token', 404);
      record({
        type: patch.isActive === false ? 'token.revoked' : 'token.updated',
        outcome: 'success',
        actor: { type: 'user', id: userId },
        subject: { type: 'token', id },
        context,
        details: { kind: row.kind, name: patch.name, is_active: patch.isActive, expires_at: patch.expiresAt?.toISOString() },
      });
      return tokenView(updated, now, currentId);
    },

    async deleteToken(userId: string, id: string, context?: RequestContext): Promise<void> {
      const now = clock();
      const row = await tokens.findUserTokenById(userId, id);
      if (!row) throw new AppError('not_found', 'no such token', 404);
      await revocation.revokeToken(row, now);
      // Deleted, not only deactivated: a deleted token can never be reactivated.
      await tokens.deleteUserToken(userId, id);
      record({ type: 'token.revoked', outcome: 'success', actor: { type: 'user', id: userId }, subject: { type: 'token', id }, context, details: { kind: row.kind, deleted: true } });
    },
  };
}
