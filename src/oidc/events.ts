/**
 * Records the provider's own events through the audit sink. Hot-path events (a grant per token request)
 * are queued, not awaited: the audit service batches them.
 */
import Provider from 'oidc-provider';
import type { Db } from '../db/client.js';
import type { Clock } from '../lib/clock.js';
import { describeDevice } from '../lib/device.js';
import { createAuthTokenQueries } from '../queries/auth-tokens.js';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuditEvent, AuditService } from '../services/audit.js';
import { standardErrorCode } from './error-codes.js';
import { requestContextOfKoa } from '../lib/request-context.js';

interface EventLogger {
  error(obj: object, msg: string): void;
}

function contextOf(ctx: KoaContextWithOIDC | undefined): AuditEvent['context'] {
  return ctx ? requestContextOfKoa(ctx) : undefined;
}

function actorOf(ctx: KoaContextWithOIDC | undefined): AuditEvent['actor'] {
  const accountId = ctx?.oidc?.session?.accountId ?? ctx?.oidc?.entities?.Account?.accountId;
  if (accountId) return { type: 'user', id: accountId };
  const clientId = ctx?.oidc?.client?.clientId;
  return clientId ? { type: 'client', id: clientId } : { type: 'anonymous' };
}

function errorDetails(error: unknown, ctx?: KoaContextWithOIDC): { error: string; description?: string | undefined } {
  const e = error as { error?: string; error_description?: string; message?: string };
  const description = e.error_description ?? (e.error ? e.message : undefined);
  // Recorded with the code the client was answered (error-codes.ts corrects some of the library's).
  return { error: standardErrorCode(ctx?.oidc?.route, e.error, description) ?? 'server_error', description };
}

export function registerProviderEvents(provider: Provider, audit: AuditService, log: EventLogger): void {
  const write = (event: AuditEvent) => {
    audit.record(event).catch((err: unknown) => log.error({ err, type: event.type }, 'audit event lost'));
  };
  const base = (ctx: KoaContextWithOIDC | undefined) => ({
    actor: actorOf(ctx),
    clientId: ctx?.oidc?.client?.clientId,
    context: contextOf(ctx),
  });

  provider.on('authorization.success', (ctx) => write({ type: 'oidc.authorization', outcome: 'success', ...base(ctx) }));
  provider.on('authorization.error', (ctx, error) =>
    write({ type: 'oidc.authorization', outcome: 'failure', ...base(ctx), details: errorDetails(error, ctx) }),
  );
  provider.on('grant.success', (ctx) =>
    write({
      type: 'oidc.grant',
      outcome: 'success',
      ...base(ctx),
      subject: ctx.oidc.entities.Account ? { type: 'user', id: ctx.oidc.entities.Account.accountId } : undefined,
      details: { grant_type: ctx.oidc.params?.grant_type },
    }),
  );
  provider.on('grant.error', (ctx, error) => {
    const details = { ...errorDetails(error, ctx), grant_type: ctx.oidc.params?.grant_type };
    write({ type: 'oidc.grant', outcome: 'failure', ...base(ctx), details });
    if (details.description === 'refresh token already used' || details.description === 'authorization code already consumed') {
      write({ type: 'token.reuse_detected', outcome: 'failure', ...base(ctx), details });
    }
  });
  provider.on('grant.revoked', (ctx, grantId) =>
    write({ type: 'oidc.grant_revoked', outcome: 'success', ...base(ctx), details: { grant_id: grantId } }),
  );
  provider.on('revocation.error', (ctx, error) => {
    // A JWT is refused by the library, then revoked (and audited) by token-endpoints.ts: not a failure.
    if ((error as { error?: string }).error === 'unsupported_token_type') return;
    write({ type: 'oidc.token_revoked', outcome: 'failure', ...base(ctx), details: errorDetails(error, ctx) });
  });
  provider.on('interaction.started', (ctx, prompt) =>
    write({ type: 'oidc.interaction_started', outcome: 'success', ...base(ctx), details: { prompt: prompt.name, reasons: prompt.reasons } }),
  );
  provider.on('interaction.ended', (ctx) => write({ type: 'oidc.interaction_ended', outcome: 'success', ...base(ctx) }));
  provider.on('end_session.success', (ctx) => write({ type: 'logout', outcome: 'success', ...base(ctx) }));
  provider.on('end_session.error', (ctx, error) => write({ type: 'logout', outcome: 'failure', ...base(ctx), details: errorDetails(error, ctx) }));
  provider.on('server_error', (_ctx, error) => log.error({ err: error }, 'oidc-provider server error'));
}

/** At most one write per minute per mirrored grant for "last used" (a refresh per request would be one each). */
const MIRROR_TOUCH_SECONDS = 60;

/**
 * Mirrors oidc-provider's browser sessions and grants into `auth_tokens` (kinds `oidc_session` and
 * `oidc_grant`), with the device and IP of the request that created them, so a user sees and ends them in
 * the same list as first-party sessions. The provider's rows stay the truth: revoking a mirror revokes
 * the grant (tombstone) or deletes the session; the mirror is only what the list shows.
 */
export function registerSessionMirror(provider: Provider, deps: { db: Db; clock: Clock; log: EventLogger }): void {
  const tokens = createAuthTokenQueries(deps.db);
  const run = (work: Promise<unknown>) => {
    work.catch((err: unknown) => deps.log.error({ err }, 'session mirror update failed'));
  };
  const requestContext = () => {
    const ctx = Provider.ctx;
    return { ip: ctx?.ip, userAgent: ctx?.get('user-agent') || undefined, clientId: ctx?.oidc?.client?.clientId };
  };
  const expiry = (exp: number | undefined) => (exp ? new Date(exp * 1000) : null);

  provider.on('session.saved', (session) => {
    if (!session.accountId || !session.jti) return;
    const { ip, userAgent } = requestContext();
    const now = deps.clock();
    run(
      tokens.upsertOidcMirror({
        userId: session.accountId,
        kind: 'oidc_session',
        name: 'Browser sign-in',
        reference: session.jti,
        deviceInfo: describeDevice(userAgent),
        ipAddress: ip ?? null,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: expiry(session.exp),
      }),
    );
  });
  provider.on('grant.saved', (grant) => {
    if (!grant.accountId || !grant.jti) return;
    const { ip, userAgent } = requestContext();
    const now = deps.clock();
    run(
      tokens.upsertOidcMirror({
        userId: grant.accountId,
        kind: 'oidc_grant',
        name: grant.clientId ?? null,
        reference: grant.jti,
        deviceInfo: describeDevice(userAgent),
        ipAddress: ip ?? null,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: expiry(grant.exp),
      }),
    );
  });
  provider.on('refresh_token.saved', (token) => {
    if (token.grantId) run(tokens.touchOidcMirror('oidc_grant', token.grantId, deps.clock(), MIRROR_TOUCH_SECONDS));
  });
  provider.on('session.destroyed', (session) => {
    if (session.jti) run(tokens.deactivateOidcMirror('oidc_session', session.jti, deps.clock()));
  });
  provider.on('grant.destroyed', (grant) => {
    if (grant.jti) run(tokens.deactivateOidcMirror('oidc_grant', grant.jti, deps.clock()));
  });
  provider.on('grant.revoked', (_ctx, grantId) => run(tokens.deactivateOidcMirror('oidc_grant', grantId, deps.clock())));
}
