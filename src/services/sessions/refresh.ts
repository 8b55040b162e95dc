/**
 * First-party sessions: creation at login and refresh with rotation, reuse detection and retry safety.
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
import type { DeviceInfo } from '../../lib/device.js';
import { AppError } from '../../errors/index.js';
import { addSeconds } from '../../lib/clock.js';
import { decrypt, encrypt, randomToken } from '../../lib/crypto.js';
import { networkOf } from '../../lib/network.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createAuthTokenQueries, createRefreshTokenQueries } from '../../queries/auth-tokens.js';
import { createUserQueries } from '../../queries/users.js';
import { REFRESH_TOKEN_PREFIX, type AuditRecorder, type SessionServiceDeps, type TokenPair } from './model.js';

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

export function createRefreshRotation(deps: SessionServiceDeps, record: AuditRecorder) {
  const { db, clock, config } = deps;
  const tokens = createAuthTokenQueries(db);
  const refreshQueries = createRefreshTokenQueries(db);
  const users = createUserQueries(db);

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
        refresh: { id: minted.refreshId, tokenHash: deps.tokenDigest.stored(minted.pair.refresh_token), expiresAt: minted.idleExpiresAt },
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

      const digests = deps.tokenDigest.candidates(input.refreshToken);
      const network = networkOf(context.ip) ?? null;
      type Row = NonNullable<Awaited<ReturnType<typeof refreshQueries.findRefreshTokenByDigests>>>;

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
        const row = await refreshQueries.findRefreshTokenByDigests(digests);
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
          successor: { id: minted.refreshId, tokenHash: deps.tokenDigest.stored(minted.pair.refresh_token), expiresAt: minted.idleExpiresAt },
          now,
          usedByDevice: deviceId,
          retryResponse: keepForRetry ? encrypt(deps.retryKey, JSON.stringify(sealed), `refresh-retry:${token.id}`) : null,
          retryUntil: keepForRetry ? addSeconds(now, config.retryWindow) : null,
          ipAddress: context.ip,
        });
        if (rotated) return { kind: 'rotated', pair: minted.pair, userId: session.userId, ipChanged, previousIp: session.ipAddress };
        // Another request (on any replica) rotated it, or the session was revoked, between our read and write.
        const now2 = await refreshQueries.findRefreshTokenByDigests(digests);
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

  };
}
export type RefreshRotation = ReturnType<typeof createRefreshRotation>;
