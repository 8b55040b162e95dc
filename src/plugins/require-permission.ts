/**
 * require-permission: the one mechanism that protects management endpoints. A route declares what it needs in
 * its definition, and this plugin's onRoute hook installs the guard in front of its handler:
 *   config: { permission: 'auth.roles.manage' }  → Bearer authentication, then the permission
 *   config: { authenticated: true }               → Bearer authentication only (the service decides the rest)
 * Missing or bad token → 401 (authenticate.ts); insufficient permission → 403 {error: "forbidden", required}.
 * Refusals are thrown as AppError and rendered by the error handler.
 * A delegated token (an OIDC access token for the API, a personal token) must also carry the permission's scope
 * (services/api-scopes.ts), else 403 {error: "insufficient_scope", required} (RFC 6750 §3.1); a first-party
 * session token is the user's own session and is not scope-limited. A user holding a role with `mfa_required` needs
 * a session or token whose sign-in used a second factor (`amr` has `mfa`), else 403 {error: "mfa_required"}.
 * The caller's effective permissions (user, or service-account client) come from the decision cache, limited
 * to what the token's scopes allow, and are left on `request.authz` for handlers to pass to services
 * (no-escalation checks need them).
 * Must be registered before the routes it protects.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors/index.js';
import { restrictToScopes, scopeAllows } from '../services/api-scopes.js';
import type { AuditService } from '../services/audit.js';
import type { DecisionCache } from '../services/rbac/cache.js';
import { holds, type Effective } from '../services/rbac/effective.js';
import type { Actor, AuthPermission } from '../services/rbac/service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The permission this route requires (checked before the handler runs). */
    permission?: AuthPermission;
    /** Authentication required, no particular permission. */
    authenticated?: boolean;
  }
  interface FastifyRequest {
    /** The authenticated caller's effective permissions, on guarded routes. */
    authz?: Effective;
  }
}

/** The actor a guarded handler passes to services. */
export function actorOf(request: FastifyRequest): Actor {
  const principal = request.principal;
  const effective = request.authz;
  if (!principal || !effective) throw new Error('actorOf used on a route without a permission guard');
  return {
    audit: principal.kind === 'user' ? { type: 'user', id: principal.userId } : { type: 'client', id: principal.clientId },
    effective,
    context: request.requestContext,
  };
}

async function requirePermissionPlugin(app: FastifyInstance, options: { cache: DecisionCache; audit: AuditService }): Promise<void> {
  app.decorateRequest('authz', undefined);

  // The scoped view of a subject's permissions, kept while the decision cache keeps its entry: the check API is
  // a hot path, and a service account's token presents the same scopes on every call.
  const scopedViews = new WeakMap<Effective, Map<string, Effective>>();
  const MAX_SCOPED_VIEWS_PER_SUBJECT = 32;
  function scopedView(effective: Effective, scopes: ReadonlySet<string>): Effective {
    const key = [...scopes].sort().join(' ');
    let views = scopedViews.get(effective);
    const hit = views?.get(key);
    if (hit) return hit;
    const view = restrictToScopes(effective, scopes);
    if (!views) scopedViews.set(effective, (views = new Map()));
    if (views.size < MAX_SCOPED_VIEWS_PER_SUBJECT) views.set(key, view);
    return view;
  }

  function denied(request: FastifyRequest, permission: AuthPermission, reason: 'missing_permission' | 'insufficient_scope' | 'mfa_required') {
    const principal = request.principal;
    void options.audit
      .record({
        type: 'access.denied',
        outcome: 'failure',
        actor: principal?.kind === 'user' ? { type: 'user', id: principal.userId } : { type: 'client', id: principal?.clientId },
        context: request.requestContext,
        details: { method: request.method, route: request.routeOptions.url, required: permission, reason },
      })
      .catch(() => {});
  }

  function guard(permission: AuthPermission | undefined): preHandlerHookHandler {
    return async function requirePermission(request: FastifyRequest, reply: FastifyReply) {
      await app.authenticate(request, reply);
      const principal = request.principal;
      if (!principal) throw new AppError('unauthorized', 'a bearer token is required');
      const subject = principal.kind === 'user' && principal.userId ? { kind: 'user' as const, id: principal.userId } : { kind: 'client' as const, id: principal.clientId ?? '' };
      const delegated = principal.via !== 'first-party-session';
      if (permission && delegated && !scopeAllows(principal.scopes, permission)) {
        denied(request, permission, 'insufficient_scope');
        // RFC 6750 §3.1: the challenge names the scope that would have sufficed.
        throw new AppError('insufficient_scope', `this token lacks the ${permission} scope`, {
          extra: { required: permission },
          headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="${permission}"` },
        });
      }
      const effective = await options.cache.get(subject);
      request.authz = delegated ? scopedView(effective, principal.scopes) : effective;
      if (permission && !holds(request.authz, permission)) {
        denied(request, permission, 'missing_permission');
        throw new AppError('forbidden', `this requires the ${permission} permission`, { extra: { required: permission } });
      }
      // A role with `mfa_required` makes sign-in ask for a second factor; sessions and tokens from a sign-in
      // without one (from before the role required it, or before it was assigned) may not use the account's
      // permissions either. Client principals are not users: they are exempt.
      if (permission && principal.kind === 'user' && effective.mfaRequired && !principal.amr?.includes('mfa')) {
        denied(request, permission, 'mfa_required');
        throw new AppError('mfa_required', 'a role of yours requires signing in with a second factor; sign in again', { extra: { required: permission } });
      }
    };
  }

  app.addHook('onRoute', (route) => {
    const config = route.config as { permission?: AuthPermission; authenticated?: boolean } | undefined;
    if (!config?.permission && !config?.authenticated) return;
    const existing = route.preHandler ? (Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]) : [];
    route.preHandler = [guard(config.permission), ...existing];
    // Documented in OpenAPI: these routes take a Bearer token.
    if (route.schema) route.schema = { ...route.schema, security: [{ bearer: [] }] } as typeof route.schema;
  });
}

export const requirePermission = fp(requirePermissionPlugin, { name: 'keryu-require-permission', dependencies: ['keryu-authenticate'] });
