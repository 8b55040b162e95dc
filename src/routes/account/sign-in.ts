/**
 * Signing in to and out of the account pages, through the provider like any application (see
 * services/account/relying-party.ts). `/account/login?reauth=1` asks the provider for a fresh
 * authentication (`max_age`), which sensitive changes require.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ACCOUNT_PATHS, AccountSignInFailed, safeReturnTo, type AccountRelyingParty } from '../../services/account/relying-party.js';
import type { AccountSessions } from '../../services/account/session.js';
import { seeOther } from '../../views/page.js';
import type { AccountContext } from './context.js';

const loginQuery = z.object({
  return_to: z.string().max(512).optional().catch(undefined),
  reauth: z.literal('1').optional().catch(undefined),
});

export async function accountSignInRoutes(app: FastifyInstance, deps: { relyingParty: AccountRelyingParty; sessions: AccountSessions; context: AccountContext }): Promise<void> {
  const { context } = deps;

  app.get(ACCOUNT_PATHS.login, { config: { page: true } }, async (request, reply) => {
    const query = loginQuery.parse(request.query);
    const { url, pending } = await deps.relyingParty.start(
      { returnTo: safeReturnTo(query.return_to), maxAge: query.reauth ? context.reauthMaxAge : undefined },
      request.ip,
    );
    context.setCookie(reply, context.pendingCookie, deps.sessions.sealPending(pending), deps.sessions.pendingCookieMaxAge);
    return seeOther(reply, url);
  });

  app.get(ACCOUNT_PATHS.callback, { config: { page: true } }, async (request, reply) => {
    const pending = deps.sessions.openPending(context.readCookie(request, context.pendingCookie));
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
    if (!pending) return failed(reply, 'This sign-in has expired or was started in another browser.');
    try {
      const signIn = await deps.relyingParty.finish(query, pending, request.ip);
      context.clearCookie(reply, context.pendingCookie);
      context.setCookie(reply, context.sessionCookie, deps.sessions.seal(signIn), deps.sessions.sessionCookieMaxAge);
      return seeOther(reply, pending.returnTo);
    } catch (err) {
      if (!(err instanceof AccountSignInFailed)) throw err;
      request.log.info({ reason: err.message }, 'account sign-in did not complete');
      context.clearCookie(reply, context.pendingCookie);
      return failed(reply, 'The sign-in did not complete.');
    }
  });

  function failed(reply: Parameters<AccountContext['send']>[0], reason: string) {
    return context.send(reply, undefined, 400, 'message', {
      title: 'Sign-in did not complete',
      heading: 'Sign-in did not complete',
      lines: [reason, 'Start again to sign in to your account.'],
      link: { href: ACCOUNT_PATHS.login, label: 'Sign in' },
    });
  }

  app.post('/account/logout', { config: { page: true }, preHandler: context.requireSession }, async (request, reply) => {
    const session = request.account;
    if (!session || !context.csrfValid(session, (request.body as { csrf?: unknown } | undefined)?.csrf)) return context.refused(reply);
    context.clearCookie(reply, context.sessionCookie);
    // The provider asks the browser to confirm and ends the SSO session, then comes back to the signed-out page.
    return seeOther(reply, deps.relyingParty.logoutUrl());
  });

  app.get(ACCOUNT_PATHS.signedOut, { config: { page: true } }, async (_request, reply) => {
    context.clearCookie(reply, context.sessionCookie);
    return context.send(reply, undefined, 200, 'message', {
      title: 'Signed out',
      heading: 'You are signed out',
      lines: ['You have signed out of your account.'],
      link: { href: ACCOUNT_PATHS.home, label: 'Sign in again' },
    });
  });
}
