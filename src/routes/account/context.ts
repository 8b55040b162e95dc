/**
 * What every account page shares: the account session read from its cookie (or a redirect to sign in),
 * the re-authentication rule for sensitive changes, the CSRF token of the session's forms, and the page
 * sender with the account layout (navigation, who is signed in).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { readCookie } from '../../lib/device-cookie.js';
import { ACCOUNT_PATHS } from '../../services/account/relying-party.js';
import type { AccountSessions, ActiveAccountSession } from '../../services/account/session.js';
import type { FormCsrf } from '../../views/csrf.js';
import { seeOther, sendPage } from '../../views/page.js';

export interface AccountContextDeps {
  sessions: AccountSessions;
  csrf: FormCsrf;
  secureCookies: boolean;
}

/** The navigation of the account pages, in order; `path` is also the page's id. */
export const ACCOUNT_NAVIGATION = [
  { path: '/account/', label: 'Overview' },
  { path: '/account/sessions', label: 'Sessions and devices' },
  { path: '/account/security', label: 'Security' },
  { path: '/account/tokens', label: 'Personal tokens' },
  { path: '/account/applications', label: 'Applications' },
  { path: '/account/activity', label: 'Activity' },
] as const;

declare module 'fastify' {
  interface FastifyRequest {
    account?: ActiveAccountSession;
  }
}

export function createAccountContext(deps: AccountContextDeps) {
  // `__Host-` (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain, so no sibling host can set or shadow it.
  const sessionCookie = deps.secureCookies ? '__Host-keryu_account' : 'keryu_account';
  const pendingCookie = deps.secureCookies ? '__Host-keryu_account_login' : 'keryu_account_login';
  const attributes = `Path=/; HttpOnly; SameSite=Lax${deps.secureCookies ? '; Secure' : ''}`;

  // Bound to the account session's random id: a form of an ended session is refused.
  const csrfFor = (session: ActiveAccountSession) => deps.csrf.issue('account', session.id);

  /**
   * Sends an account page in the account layout (navigation with the current page marked). `scripts`: the
   * page carries the passkey script (its policy then allows `script-src 'self'`).
   */
  function send(reply: FastifyReply, session: ActiveAccountSession | undefined, status: number, template: string, model: { title: string; current?: string; [key: string]: unknown }, options: { scripts?: boolean } = {}) {
    return sendPage(reply, {
      status,
      scripts: options.scripts,
      template: `account/${template}`,
      model: {
        ...model,
        navigation: session ? ACCOUNT_NAVIGATION : [],
        user: session ? { name: session.user.name, email: session.user.email } : undefined,
        csrf: session ? csrfFor(session) : undefined,
      },
    });
  }

  function loginUrl(returnTo: string, reauth = false): string {
    const query = new URLSearchParams({ return_to: returnTo });
    if (reauth) query.set('reauth', '1');
    return `${ACCOUNT_PATHS.login}?${query.toString()}`;
  }

  return {
    sessionCookie,
    pendingCookie,
    setCookie(reply: FastifyReply, name: string, value: string, maxAge: number) {
      return reply.header('set-cookie', `${name}=${value}; Max-Age=${maxAge}; ${attributes}`);
    },
    clearCookie(reply: FastifyReply, name: string) {
      return reply.header('set-cookie', `${name}=; Max-Age=0; ${attributes}`);
    },
    readCookie(request: FastifyRequest, name: string): string | undefined {
      return readCookie(request.headers.cookie, name);
    },
    loginUrl,

    /**
     * preHandler of every signed-in page: loads the session or sends the browser to sign in (a GET comes back
     * to the same page afterwards; a POST's form cannot be replayed, so it comes back to the page it was on).
     */
    async requireSession(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const session = await deps.sessions.open(readCookie(request.headers.cookie, sessionCookie));
      if (session) {
        request.account = session;
        return;
      }
      const returnTo = request.method === 'GET' ? request.url : (request.headers.referer ? new URL(request.headers.referer, 'http://x').pathname : ACCOUNT_PATHS.home);
      await seeOther(reply, loginUrl(returnTo));
    },

    /** Sensitive changes: a sign-in within RECENT_SIGN_IN_MAX_AGE, or the browser goes to sign in again first. */
    async requireRecentSignIn(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const session = request.account;
      if (session && deps.sessions.isRecent(session)) return;
      const returnTo = request.method === 'GET' ? request.url : (request.headers.referer ? new URL(request.headers.referer, 'http://x').pathname : ACCOUNT_PATHS.home);
      await seeOther(reply, loginUrl(returnTo, true));
    },
    reauthMaxAge: deps.sessions.recentSignInMaxAge,

    csrfFor,
    csrfValid(session: ActiveAccountSession, token: unknown): boolean {
      return deps.csrf.verify('account', session.id, token);
    },

    /** A form without its session's CSRF token (forged, or from an older session): refused, nothing changed. */
    refused(reply: FastifyReply) {
      return send(reply, undefined, 403, 'message', {
        title: 'Request refused',
        heading: 'Request refused',
        lines: ['The form was not valid or has expired. Go back, reload the page and try again.'],
        link: { href: ACCOUNT_PATHS.home, label: 'Back to your account' },
      });
    },

    send,
  };
}
export type AccountContext = ReturnType<typeof createAccountContext>;

