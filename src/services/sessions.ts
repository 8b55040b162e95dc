/**
 * Size: over 400 lines until the architecture issue splits it by concept (it is planned there, with the
 * split named); kept whole meanwhile so that security fixes landed in one place.
 *
 * First-party sessions and personal API tokens: creation at login, refresh with rotation, reuse
 * detection and retry safety, revocation, and the per-user list that also shows oidc-provider's browser
 * sessions and grants.
 *
 * Refresh (RFC 9700 §4.14.2): each refresh token is single-use. The rotation is one conditional
 * statement (`UPDATE ... WHERE used_at IS NULL`, with the successor's INSERT and the session's activity in
 * the same statement), so concurrent refreshes of one token on any number of replicas are serialized by
 * PostgreSQL's row lock and exactly one rotates it; the others find it used and are answered as retries.
 * A used token presented again is
 *  - refused as `ip_mismatch` first, under SESSION_IP_BINDING=strict, when it comes from another address:
 *    the binding holds for every answer, the retry's included;
 *  - a retry, answered with the very same pair, when it comes from the same device (same device_id, or
 *    none on both) and the same network (IPv4 /24, IPv6 /64: `networkOf`) as the rotation it repeats,
 *    within REFRESH_RETRY_WINDOW while its successor is still unused. A lost response is retried by the
 *    client that sent the request, from where it sent it; anyone else holding the old token (a copy) gets
 *    no live pair. The pair and the rotation's network are kept encrypted together (AES-256-GCM, bound to
 *    the token row) only for that window;
 *  - otherwise reuse: the whole session is revoked, `token.reuse_detected` is recorded and the user is
 *    told by email.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import type { DeviceInfo } from '../db/schema/index.js';
import { AppError } from '../errors/index.js';
import { addSeconds, type Clock } from '../lib/clock.js';
import { decrypt, encrypt, randomToken, sha256 } from '../lib/crypto.js';
import { networkOf } from '../lib/network.js';
import { decodeCursor, encodeCursor } from '../lib/pagination.js';
import { createAuthTokenQueries, createRefreshTokenQueries, type AuthTokenRow } from '../queries/auth-tokens.js';
import { createOidcSessionQueries } from '../queries/oidc-sessions.js';
import { createUserQueries } from '../queries/users.js';
import { FIRST_PARTY_CLIENT_ID, type AccessTokenIssuer } from './access-tokens.js';
import type { AuditEvent, AuditService } from './audit.js';
import type { RequestContext } from '../lib/request-context.js';
import { API_SCOPES, isApiScope } from './api-scopes.js';
import type { Mailer } from './notify/mailer.js';

export const REFRESH_TOKEN_PREFIX = 'krt_';
export const PERSONAL_TOKEN_PREFIX = 'kpat_';
/** last_used_at (and the IP of use) is written at most once per this many seconds per token. */
export const TOUCH_INTERVAL_SECONDS = 60;

export interface TokenPair {
  token_type: 'Bearer';
  access_token: string;
  expires_in: number;
  refresh_token: string;
  session_id: string;
}

export interface SessionServiceConfig {
  accessTokenTtl: number;
  idleTtl: number;
  absoluteTtl: number;
  retryWindow: number;
  ipBinding: 'off' | 'strict';
  personalTokenTtl: number;
  personalTokenMaxTtl: number;
  /** A session may create a personal token only this many seconds after its sign-in. */
  /** Seconds after a session's sign-in within which it counts as a recent sign-in (RECENT_SIGN_IN_MAX_AGE). */
  recentSignInMaxAge: number;
  /** How long a revoked OIDC grant's tombstone is kept. */
  tombstoneTtl: number;
}

export interface SessionServiceDeps {
  db: Db;
  clock: Clock;
  config: SessionServiceConfig;
  audit: AuditService;
  mailer: Mailer;
  accessTokens: () => AccessTokenIssuer;
  retryKey: Buffer;
  log: { error(obj: object, msg: string): void };
}

export interface TokenView {
  id: string;
  kind: AuthTokenRow['kind'];
  name: string | null;
  device_info: DeviceInfo;
  ip_address: string | null;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  is_active: boolean;
  current: boolean;
}

interface SealedPair {
  access_token: string;
  access_expires_at: number;
  refresh_token: string;
  session_id: string;
  /**
   * `networkOf` the rotation's address (null without one): only a retry from it gets this pair. Absent in a
   * pair sealed by an older release, which then answers no retry (the window is seconds long).
   */
  network?: string | null;
}

export interface SessionPrincipal {
  userId: string;
  sessionId: string;
  kind: 'session' | 'personal';
  scopes: string[];
  /** How the user signed in (RFC 8176), for rules such as a role's `mfa_required`; empty when not recorded. */
  amr: string[];
}

function effectiveExpiry(row: Pick<AuthTokenRow, 'expiresAt' | 'idleExpiresAt'>): Date | null {
  if (row.expiresAt && row.idleExpiresAt) return row.expiresAt < row.idleExpiresAt ? row.expiresAt : row.idleExpiresAt;
  return row.expiresAt ?? row.idleExpiresAt;
}

export function createSessionService(deps: SessionServiceDeps) {
  const { db, clock, config } = deps;
  const tokens = createAuthTokenQueries(db);
  const oidc = createOidcSessionQueries(db);
  const users = createUserQueries(db);

  const record = (event: AuditEvent) => {
    deps.audit.record(event).catch((err: unknown) => deps.log.error({ err, type: event.type }, 'audit event lost'));
  };

  function notifyReuse(userId: string) {
    void users
      .findUserById(userId)
      .then((user) =>
        user
          ? deps.mailer.send({
              to: user.email,
              subject: 'A sign-in of yours was ended for your safety',
              text: [
                'A refresh token of one of your sessions was used twice, which can mean it was copied.',
                'We signed that session out. If it was you, sign in again; if not, change your password.',
              ].join('\n'),
            })
          : undefined,
      )
      .catch((err: unknown) => deps.log.error({ err }, 'reuse notification failed'));
  }

  /** A new pair: the refresh token's row is inserted by the caller (login) or the rotation statement. */
  async function mintPair(sessionId: string, userId: string, now: Date, sessionExpiresAt: Date) {
    const refreshToken = `${REFRESH_TOKEN_PREFIX}${randomToken()}`;
    const idleEnd = addSeconds(now, config.idleTtl);
    const accessToken = await deps.accessTokens().sign({ sub: userId, sid: sessionId }, config.accessTokenTtl, now);
    const pair: TokenPair = { token_type: 'Bearer', access_token: accessToken, expires_in: config.accessTokenTtl, refresh_token: refreshToken, session_id: sessionId };
    return { pair, refreshId: randomUUID(), idleExpiresAt: idleEnd < sessionExpiresAt ? idleEnd : sessionExpiresAt };
  }

  function view(row: AuthTokenRow, now: Date, currentId: string | undefined): TokenView {
    const expiresAt = effectiveExpiry(row);
    return {
      id: row.id,
      kind: row.kind,
      name: row.name,
      device_info: row.deviceInfo,
      ip_address: row.ipAddress,
      scopes: row.scopes,
      created_at: row.createdAt.toISOString(),
      expires_at: expiresAt?.toISOString() ?? null,
      last_used_at: row.lastUsedAt?.toISOString() ?? null,
      is_active: row.isActive && (!expiresAt || expiresAt > now),
      current: row.id === currentId,
    };
  }

  async function revokeRow(row: Pick<AuthTokenRow, 'id' | 'kind' | 'reference'>, now: Date): Promise<boolean> {
    const changed = await tokens.revokeToken(row.id, now);
    if (row.kind === 'oidc_grant' && row.reference) await oidc.revokeGrants([row.reference], addSeconds(now, config.tombstoneTtl));
    if (row.kind === 'oidc_session' && row.reference) await oidc.deleteOidcSession(row.reference);
    if (row.kind === 'session') await createRefreshTokenQueries(db).clearRetryResponsesBySession(row.id);
    return changed;
  }

  /** A session or personal token ended because it was presented at the revocation endpoint (RFC 7009). */
  async function revokePresented(row: Pick<AuthTokenRow, 'id' | 'userId' | 'kind' | 'reference'>, now: Date, context: RequestContext | undefined): Promise<void> {
    await revokeRow(row, now);
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

  return {
    /** Starts a session after every login step is done; returns its first token pair. */
    async createSession(input: { userId: string; device: DeviceInfo; deviceId?: string | undefined; ip?: string | undefined; amr: string[] }, context?: RequestContext): Promise<TokenPair> {
      const now = clock();
      const sessionExpiresAt = addSeconds(now, config.absoluteTtl);
      const sessionId = randomUUID();
      const minted = await mintPair(sessionId, input.userId, now, sessionExpiresAt);
      await tokens.insertSessionWithRefreshToken({
        id: sessionId,
        userId: input.userId,
        name: input.device.device_name ?? null,
        deviceInfo: input.device,
        deviceId: input.deviceId ?? null,
        ipAddress: input.ip ?? null,
        amr: input.amr,
        now,
        expiresAt: sessionExpiresAt,
        refresh: { id: minted.refreshId, tokenHash: sha256(minted.pair.refresh_token), expiresAt: minted.idleExpiresAt },
      });
      const result = minted.pair;
      record({
        type: 'session.created',
        outcome: 'success',
        actor: { type: 'user', id: input.userId },
        subject: { type: 'session', id: result.session_id },
        context,
        details: { amr: input.amr, device_id: input.deviceId },
      });
      return result;
    },

    async refresh(input: { refreshToken: string; deviceId?: string | undefined }, context: RequestContext = {}): Promise<TokenPair> {
      const now = clock();
      const deviceId = input.deviceId ?? null;
      if (!input.refreshToken.startsWith(REFRESH_TOKEN_PREFIX)) throw new AppError('invalid_token', 'the refresh token is invalid, expired or revoked', 401);
      type Outcome =
        | { kind: 'unknown' }
        | { kind: 'expired'; sessionId: string; userId: string }
        | { kind: 'retry'; pair: SealedPair; sessionId: string; userId: string }
        | { kind: 'reuse' | 'device_mismatch' | 'ip_mismatch'; sessionId: string; userId: string }
        | { kind: 'rotated'; pair: TokenPair; userId: string; ipChanged: boolean; previousIp: string | null };

      const refreshQueries = createRefreshTokenQueries(db);
      const tokenHash = sha256(input.refreshToken);
      const network = networkOf(context.ip) ?? null;
      type Row = NonNullable<Awaited<ReturnType<typeof refreshQueries.findRefreshTokenByHash>>>;

      /** A used token presented again: the same answer for a retry, otherwise reuse (the session is revoked). */
      async function replayed({ token, session }: Row): Promise<Outcome> {
        const ids = { sessionId: session.id, userId: session.userId };
        const sameDevice = (token.usedByDevice ?? null) === deviceId;
        if (config.retryWindow > 0 && token.retryResponse && token.retryUntil && token.retryUntil > now && sameDevice && token.successorId) {
          const pair = JSON.parse(decrypt(deps.retryKey, token.retryResponse, `refresh-retry:${token.id}`)) as SealedPair;
          const sameNetwork = pair.network !== undefined && pair.network === network;
          const successorUsed = sameNetwork ? await refreshQueries.findRefreshTokenUsedAt(token.successorId) : undefined;
          if (successorUsed === null) return { kind: 'retry', pair, ...ids };
        }
        await tokens.revokeToken(session.id, now);
        await refreshQueries.clearRetryResponsesBySession(session.id);
        return { kind: 'reuse', ...ids };
      }

      const decide = async (): Promise<Outcome> => {
        const row = await refreshQueries.findRefreshTokenByHash(tokenHash);
        if (!row || row.session.kind !== 'session' || !row.session.isActive || row.userDisabled) return { kind: 'unknown' };
        const { token, session } = row;
        const ids = { sessionId: session.id, userId: session.userId };
        const ipChanged = Boolean(context.ip && session.ipAddress && context.ip !== session.ipAddress);
        // Strict binding before the retry path: no answer of any kind goes to another address.
        if (token.usedAt) return ipChanged && config.ipBinding === 'strict' ? { kind: 'ip_mismatch', ...ids } : replayed(row);
        if ((session.expiresAt && session.expiresAt <= now) || token.expiresAt <= now) return { kind: 'expired', ...ids };
        if (session.deviceId && session.deviceId !== deviceId) {
          await tokens.revokeToken(session.id, now);
          await refreshQueries.clearRetryResponsesBySession(session.id);
          return { kind: 'device_mismatch', ...ids };
        }
        if (ipChanged && config.ipBinding === 'strict') return { kind: 'ip_mismatch', ...ids };

        // Everything the answer needs is made first; then one conditional statement decides who rotates.
        const minted = await mintPair(session.id, session.userId, now, session.expiresAt ?? addSeconds(now, config.absoluteTtl));
        const keepForRetry = config.retryWindow > 0;
        const sealed: SealedPair = {
          access_token: minted.pair.access_token,
          access_expires_at: now.getTime() + config.accessTokenTtl * 1000,
          refresh_token: minted.pair.refresh_token,
          session_id: session.id,
          network,
        };
        const rotated = await refreshQueries.rotateRefreshToken({
          tokenId: token.id,
          successor: { id: minted.refreshId, tokenHash: sha256(minted.pair.refresh_token), expiresAt: minted.idleExpiresAt },
          now,
          usedByDevice: deviceId,
          retryResponse: keepForRetry ? encrypt(deps.retryKey, JSON.stringify(sealed), `refresh-retry:${token.id}`) : null,
          retryUntil: keepForRetry ? addSeconds(now, config.retryWindow) : null,
          ipAddress: context.ip,
        });
        if (rotated) return { kind: 'rotated', pair: minted.pair, userId: session.userId, ipChanged, previousIp: session.ipAddress };
        // Another request (on any replica) rotated it, or the session was revoked, between our read and write.
        const now2 = await refreshQueries.findRefreshTokenByHash(tokenHash);
        if (!now2 || !now2.session.isActive || !now2.token.usedAt) return { kind: 'unknown' };
        return replayed(now2);
      };
      const outcome = await decide();

      const subject = (sessionId: string) => ({ type: 'session', id: sessionId });
      switch (outcome.kind) {
        case 'unknown':
          throw new AppError('invalid_token', 'the refresh token is invalid, expired or revoked', 401);
        case 'expired':
          record({ type: 'session.refreshed', outcome: 'failure', actor: { type: 'user', id: outcome.userId }, subject: subject(outcome.sessionId), context, details: { reason: 'session_expired' } });
          throw new AppError('session_expired', 'the session has expired; sign in again', 401);
        case 'reuse':
          record({ type: 'token.reuse_detected', outcome: 'failure', actor: { type: 'anonymous' }, subject: subject(outcome.sessionId), context, details: { user_id: outcome.userId, device_id: deviceId } });
          record({ type: 'session.revoked', outcome: 'success', actor: { type: 'system' }, subject: subject(outcome.sessionId), context, details: { user_id: outcome.userId, reason: 'refresh_token_reuse' } });
          notifyReuse(outcome.userId);
          throw new AppError('invalid_token', 'the refresh token is invalid, expired or revoked', 401);
        case 'device_mismatch':
          record({ type: 'session.device_mismatch', outcome: 'failure', actor: { type: 'anonymous' }, subject: subject(outcome.sessionId), context, details: { user_id: outcome.userId, device_id: deviceId } });
          record({ type: 'session.revoked', outcome: 'success', actor: { type: 'system' }, subject: subject(outcome.sessionId), context, details: { user_id: outcome.userId, reason: 'device_mismatch' } });
          throw new AppError('device_mismatch', 'this refresh token belongs to another device', 401);
        case 'ip_mismatch':
          record({ type: 'session.ip_changed', outcome: 'failure', actor: { type: 'user', id: outcome.userId }, subject: subject(outcome.sessionId), context, details: { binding: 'strict' } });
          throw new AppError('ip_mismatch', 'this session may only be refreshed from the address it was created from', 401);
        case 'retry': {
          const pair = outcome.pair;
          record({ type: 'session.refreshed', outcome: 'success', actor: { type: 'user', id: outcome.userId }, subject: subject(outcome.sessionId), context, details: { retry: true } });
          return {
            token_type: 'Bearer',
            access_token: pair.access_token,
            expires_in: Math.max(0, Math.round((pair.access_expires_at - now.getTime()) / 1000)),
            refresh_token: pair.refresh_token,
            session_id: pair.session_id,
          };
        }
        case 'rotated':
          record({ type: 'session.refreshed', outcome: 'success', actor: { type: 'user', id: outcome.userId }, subject: subject(outcome.pair.session_id), context });
          if (outcome.ipChanged) {
            record({ type: 'session.ip_changed', outcome: 'success', actor: { type: 'user', id: outcome.userId }, subject: subject(outcome.pair.session_id), context, details: { previous_ip: outcome.previousIp } });
          }
          return outcome.pair;
      }
    },

    /**
     * Resolves a first-party access token to its session, by primary key on every request (no cache, so a
     * revocation applies at once on every replica). Use is recorded at most once a minute.
     */
    async authenticateAccessToken(token: string, context: RequestContext = {}): Promise<SessionPrincipal | undefined> {
      const now = clock();
      const claims = await deps.accessTokens().verify(token, now);
      if (!claims) return undefined;
      const state = await tokens.findSessionState(claims.sid);
      if (!state || state.kind !== 'session' || !state.isActive || state.userDisabled || state.userId !== claims.sub) return undefined;
      const expiry = effectiveExpiry(state);
      if (expiry && expiry <= now) throw new AppError('session_expired', 'the session has expired; sign in again', 401);
      if (!state.lastUsedAt || now.getTime() - state.lastUsedAt.getTime() >= TOUCH_INTERVAL_SECONDS * 1000 || (context.ip && context.ip !== state.ipAddress && !state.lastUsedAt)) {
        tokens.touchToken(state.id, now, context.ip, TOUCH_INTERVAL_SECONDS).catch((err: unknown) => deps.log.error({ err }, 'token use not recorded'));
      }
      return { userId: state.userId, sessionId: state.id, kind: 'session', scopes: [], amr: state.amr ?? [] };
    },

    /**
     * RFC 7662 introspection of what this API issues (session access tokens and personal tokens): active
     * only while the token is unexpired and its session or token is not revoked, so a relying service that
     * introspects sees a logout at once.
     */
    async introspect(token: string): Promise<Record<string, unknown>> {
      const now = clock();
      const inactive = { active: false };
      if (token.startsWith(PERSONAL_TOKEN_PREFIX)) {
        const row = await tokens.findPersonalTokenByHash(sha256(token));
        if (!row || !row.isActive || row.userDisabled || (row.expiresAt && row.expiresAt <= now)) return inactive;
        return {
          active: true,
          token_type: 'Bearer',
          sub: row.userId,
          client_id: FIRST_PARTY_CLIENT_ID,
          scope: row.scopes.join(' ') || undefined,
          iat: Math.floor(row.createdAt.getTime() / 1000),
          exp: row.expiresAt ? Math.floor(row.expiresAt.getTime() / 1000) : undefined,
        };
      }
      if (token.split('.').length !== 3) return inactive;
      const claims = await deps.accessTokens().verify(token, now);
      if (!claims) return inactive;
      const state = await tokens.findSessionState(claims.sid);
      const expiry = state ? effectiveExpiry(state) : null;
      if (!state || state.kind !== 'session' || !state.isActive || state.userDisabled || state.userId !== claims.sub || (expiry && expiry <= now)) return inactive;
      return { active: true, token_type: 'Bearer', sub: claims.sub, sid: claims.sid, client_id: claims.client_id, iss: claims.iss, aud: claims.aud, iat: claims.iat, exp: claims.exp, jti: claims.jti };
    },

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
      const row = await tokens.findPersonalTokenByHash(sha256(token));
      if (!row || !row.isActive) return false;
      await revokePresented(row, now, context);
      return true;
    },

    async authenticatePersonalToken(token: string, context: RequestContext = {}): Promise<SessionPrincipal | undefined> {
      if (!token.startsWith(PERSONAL_TOKEN_PREFIX)) return undefined;
      const now = clock();
      const row = await tokens.findPersonalTokenByHash(sha256(token));
      if (!row || !row.isActive || row.userDisabled || (row.expiresAt && row.expiresAt <= now)) return undefined;
      if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= TOUCH_INTERVAL_SECONDS * 1000) {
        tokens.touchToken(row.id, now, context.ip, TOUCH_INTERVAL_SECONDS).catch((err: unknown) => deps.log.error({ err }, 'token use not recorded'));
      }
      return { userId: row.userId, sessionId: row.id, kind: 'personal', scopes: row.scopes, amr: row.amr ?? [] };
    },

    /** Ends the caller's session (or token), or with `all` every session of the user: first-party, browser SSO and app grants. */
    async logout(principal: { userId: string; sessionId?: string | undefined }, all: boolean, context?: RequestContext): Promise<void> {
      const now = clock();
      if (all) {
        // Personal tokens too: a stolen session must not leave a lasting credential behind.
        await this.revokeUserSessions(principal.userId, { includePersonal: true, reason: 'logout_all' }, context);
      } else if (principal.sessionId) {
        const row = await tokens.findUserTokenById(principal.userId, principal.sessionId);
        if (row) await revokeRow(row, now);
      }
      record({
        type: 'logout',
        outcome: 'success',
        actor: { type: 'user', id: principal.userId },
        subject: principal.sessionId ? { type: 'session', id: principal.sessionId } : undefined,
        context,
        details: { all_sessions: all },
      });
    },

    /**
     * Revokes a user's sessions: first-party sessions, browser SSO sessions and app grants, and with
     * `includePersonal` the personal tokens too. `exceptSessionId` keeps the caller's own session.
     */
    async revokeUserSessions(userId: string, options: { exceptSessionId?: string | undefined; includePersonal?: boolean; reason: string }, context?: RequestContext) {
      const now = clock();
      const kinds = options.includePersonal
        ? (['session', 'personal', 'oidc_session', 'oidc_grant'] as const)
        : (['session', 'oidc_session', 'oidc_grant'] as const);
      const revoked = await tokens.revokeTokensByUser(userId, [...kinds], now, options.exceptSessionId);
      await createRefreshTokenQueries(db).clearRetryResponsesOfSessions(revoked.filter((r) => r.kind === 'session').map((r) => r.id));
      // Everything the provider holds for the account, mirrored or not (the caller's own session is first-party, never here).
      await oidc.revokeOidcStateByAccount(userId, addSeconds(now, config.tombstoneTtl), now);
      record({
        type: 'session.revoked',
        outcome: 'success',
        actor: { type: 'user', id: userId },
        subject: { type: 'user', id: userId },
        context,
        details: { reason: options.reason, count: revoked.length, kept: options.exceptSessionId },
      });
      return revoked.length;
    },

    async listTokens(userId: string, currentId: string | undefined, page: { limit: number; cursor?: string | undefined }) {
      const now = clock();
      const cursor = decodeCursor(page.cursor);
      const after = cursor ? { createdAt: new Date(cursor.key), id: cursor.id } : undefined;
      if (after && Number.isNaN(after.createdAt.getTime())) throw new AppError('invalid_request', 'cursor: not a cursor returned by this API');
      const rows = await tokens.listTokensByUser(userId, page.limit + 1, after);
      const items = rows.slice(0, page.limit);
      const last = items[items.length - 1];
      return {
        items: items.map((r) => view(r, now, currentId)),
        next_cursor: rows.length > page.limit && last ? encodeCursor({ key: last.createdAt.toISOString(), id: last.id }) : null,
      };
    },

    /**
     * A personal token may do only what its scopes (the API's scopes, services/api-scopes.ts) name, and only
     * while its owner holds the permission. Creating one needs a recent sign-in: a stolen session (or one left
     * open) must not turn itself into a year-long credential.
     */
    async createPersonalToken(
      principal: { userId: string; sessionId: string | undefined },
      input: { name: string; expiresIn?: number | undefined; scopes?: string[] | undefined },
      context?: RequestContext,
    ): Promise<TokenView & { token: string }> {
      const now = clock();
      const userId = principal.userId;
      const unknown = (input.scopes ?? []).filter((scope) => !isApiScope(scope));
      if (unknown.length) {
        throw new AppError('invalid_scope', `unknown scope ${unknown.join(', ')}; scopes are ${API_SCOPES.join(', ')}`, 400, { scopes: API_SCOPES });
      }
      const session = principal.sessionId ? await tokens.findUserTokenById(userId, principal.sessionId) : undefined;
      if (!session || session.kind !== 'session' || now.getTime() - session.createdAt.getTime() > config.recentSignInMaxAge * 1000) {
        throw new AppError('reauthentication_required', `sign in again: a personal token can be created only within ${config.recentSignInMaxAge} seconds of signing in`, 403, {
          max_age: config.recentSignInMaxAge,
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
        tokenHash: sha256(value),
        deviceInfo: {},
        ipAddress: context?.ip ?? null,
        scopes: [...new Set(input.scopes ?? [])],
        // The token proves what the session's sign-in proved, no more.
        amr: session.amr ?? [],
        createdAt: now,
        expiresAt: addSeconds(now, ttl),
      });
      record({ type: 'token.created', outcome: 'success', actor: { type: 'user', id: userId }, subject: { type: 'token', id: row.id }, context, details: { name: input.name, scopes: row.scopes, expires_at: row.expiresAt?.toISOString() } });
      return { ...view(row, now, undefined), token: value };
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
      if (patch.isActive === false && row.isActive) await revokeRow(row, now);
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
      return view(updated, now, currentId);
    },

    async deleteToken(userId: string, id: string, context?: RequestContext): Promise<void> {
      const now = clock();
      const row = await tokens.findUserTokenById(userId, id);
      if (!row) throw new AppError('not_found', 'no such token', 404);
      await revokeRow(row, now);
      // Deleted, not only deactivated: a deleted token can never be reactivated.
      await tokens.deleteUserToken(userId, id);
      record({ type: 'token.revoked', outcome: 'success', actor: { type: 'user', id: userId }, subject: { type: 'token', id }, context, details: { kind: row.kind, deleted: true } });
    },
  };
}
export type SessionService = ReturnType<typeof createSessionService>;
