/**
 * What every admin page shares. The console is signed in exactly like the account pages (the same account
 * session, through the keryu-account client, so MFA and every sign-in check apply), and is protected
 * declaratively, as the API is: each admin route declares
 *   config: { page: true, adminPermission: 'auth.users.manage' }   (or ADMIN_CONSOLE for the home page)
 * and the one guard below runs before its handler, on every method (view and method protection):
 *   1. an account session, or the browser goes to sign in and comes back (a GET to the same page);
 *   2. the permission, from the decision cache (refreshed on every replica by NOTIFY), else 403 and
 *      `access.denied` audited; pages one may not use are also absent from the navigation;
 *   3. the API's `mfa_required` rule: a user holding a role that requires MFA, whose sign-in did not use a
 *      second factor (`amr` lacks `mfa`), is refused and asked to sign in again;
 *   4. on every method but GET/HEAD, the form's CSRF token (bound to the account session) before anything
 *      in the form is used: a missing or wrong token answers 403 and changes nothing.
 * A route in the console without `adminPermission` fails at start-up (closed by default).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/index.js';
import type { AuditService } from '../../services/audit.js';
import type { DecisionCache } from '../../services/rbac/cache.js';
import { holds, type Effective } from '../../services/rbac/effective.js';
import type { Actor, AuthPermission } from '../../services/rbac/service.js';
import type { ActiveAccountSession } from '../../services/account/session.js';
import { sendPage } from '../../views/page.js';
import type { AccountContext } from '../account/context.js';
import { ADMIN_NAVIGATION, type AdminPage } from './navigation.js';

/** The console's home page: open to anyone who may use at least one admin page. */
export const ADMIN_CONSOLE = 'console';
export type AdminPermission = AuthPermission | typeof ADMIN_CONSOLE;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The permission an admin page or action requires (admin console routes only). */
    adminPermission?: AdminPermission;
  }
  interface FastifyRequest {
    /** On admin routes, after the guard: the signed-in administrator's effective permissions (unscoped). */
    adminAuthz?: Effective;
  }
}

export interface AdminContextDeps {
  account: AccountContext;
  cache: DecisionCache;
  audit: AuditService;
}

/** The model every admin template gets besides its own fields. */
export interface AdminPageModel {
  title: string;
  /** The navigation entry to mark as the current page. */
  current?: string | undefined;
  [key: string]: unknown;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

export function createAdminContext(deps: AdminContextDeps) {
  const { account } = deps;

  const navigationFor = (effective: Effective | undefined): AdminPage[] => (effective ? ADMIN_NAVIGATION.filter((page) => holds(effective, page.permission)) : []);
  const allows = (effective: Effective, permission: AdminPermission) => (permission === ADMIN_CONSOLE ? navigationFor(effective).length > 0 : holds(effective, permission));

  /** Sends an admin page (template under views/pages/admin/) in the console's layout. */
  function send(request: FastifyRequest, reply: FastifyReply, status: number, template: string, model: AdminPageModel): FastifyReply {
    const session = request.account;
    return sendPage(reply, {
      status,
      template: `admin/${template}`,
      model: {
        ...model,
        navigation: navigationFor(request.adminAuthz),
        user: session ? { name: session.user.name, email: session.user.email } : undefined,
        csrf: session ? account.csrfFor(session) : undefined,
      },
    });
  }

  /** A message in the console's layout: a heading, a few lines, an optional link. */
  function message(request: FastifyRequest, reply: FastifyReply, status: number, title: string, lines: string[], link?: { href: string; label: string }) {
    return send(request, reply, status, 'message', { title, heading: title, lines, link });
  }

  function denied(request: FastifyRequest, session: ActiveAccountSession, permission: AdminPermission, reason: 'missing_permission' | 'mfa_required') {
    void deps.audit
      .record({
        type: 'access.denied',
        outcome: 'failure',
        actor: { type: 'user', id: session.user.id },
        context: request.requestContext,
        details: { method: request.method, route: request.routeOptions.url, required: permission, reason },
      })
      .catch((err: unknown) => request.log.error({ err }, 'could not audit a refused admin request'));
  }

  function guard(permission: AdminPermission) {
    return async function requireAdminPermission(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      await account.requireSession(request, reply);
      const session = request.account;
      if (reply.sent || !session) return;
      const effective = await deps.cache.get({ kind: 'user', id: session.user.id });
      if (!allows(effective, permission)) {
        denied(request, session, permission, 'missing_permission');
        request.adminAuthz = effective;
        await message(request, reply, 403, 'Not allowed', ['Your roles do not allow you to use this page or action.'], { href: '/account/', label: 'Back to your account' });
        return;
      }
      request.adminAuthz = effective;
      // The rule of the API (plugins/require-permission.ts): a role with `mfa_required` is usable only from a
      // sign-in that used a second factor. Signing in again lets the provider ask for it.
      if (effective.mfaRequired && !session.amr.includes('mfa')) {
        denied(request, session, permission, 'mfa_required');
        await message(request, reply, 403, 'Sign in with a second factor', ['A role of yours requires signing in with a second factor. Sign in again to use the admin console.'], {
          href: account.loginUrl(request.method === 'GET' ? request.url : '/admin/', true),
          label: 'Sign in again',
        });
        return;
      }
      if (!SAFE_METHODS.has(request.method) && !account.csrfValid(session, (request.body as { csrf?: unknown } | undefined)?.csrf)) {
        await message(request, reply, 403, 'Request refused', ['The form was not valid or has expired. Go back, reload the page and try again.']);
      }
    };
  }

  return {
    send,
    message,
    navigationFor,

    /** Installs the guard on every route of the console; a route that declares no permission is a start-up error. */
    protect(app: FastifyInstance): void {
      app.addHook('onRoute', (route) => {
        const config = route.config as { adminPermission?: AdminPermission; page?: boolean } | undefined;
        if (!config?.adminPermission || config.page !== true) throw new Error(`admin route ${route.method} ${route.url} must declare config: { page: true, adminPermission }`);
        const existing = route.preHandler ? (Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]) : [];
        route.preHandler = [guard(config.adminPermission), ...existing];
      });
    },

    /** Who acts, for the services: the same shape as the API's actorOf, so the same no-escalation rules apply. */
    actorOf(request: FastifyRequest): Actor {
      const session = request.account;
      const effective = request.adminAuthz;
      if (!session || !effective) throw new Error('actorOf used on a route without the admin guard');
      return { audit: { type: 'user', id: session.user.id }, effective, context: request.requestContext };
    },

    /** Whether the signed-in administrator holds a permission (to show or hide an action on a page). */
    can(request: FastifyRequest, permission: AuthPermission): boolean {
      return request.adminAuthz ? holds(request.adminAuthz, permission) : false;
    },

    /** Sensitive actions: a recent sign-in, or the browser signs in again first (the account pages' rule). */
    requireRecentSignIn: account.requireRecentSignIn,

    /**
     * Renders refusals the services throw (403 no escalation, 404 unknown id, 400/409 invalid) as console pages
     * with their message, which is written for the client; anything else goes on to the app's error handler.
     */
    handleErrors(app: FastifyInstance): void {
      app.setErrorHandler(async (err, request, reply) => {
        if (!(err instanceof AppError) || !err.expose || !request.account) throw err;
        const refused = request.method === 'GET' ? 'Request not understood' : 'Not saved';
        const titles: Record<number, string> = { 400: refused, 403: 'Not allowed', 404: 'Not found', 409: refused };
        const title = titles[err.status];
        if (!title) throw err;
        return message(request, reply, err.status, title, [err.status === 404 ? 'There is nothing at this address, or it was removed.' : err.message]);
      });
    },
  };
}
export type AdminContext = ReturnType<typeof createAdminContext>;
