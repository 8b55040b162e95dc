/**
 * Security settings: the password and the list of second factors (make one preferred, remove one after a
 * confirmation page). Adding factors and recovery codes: security-factors.ts. Every change goes through the
 * services the JSON API uses (password-management changePassword, factors), with their audit events.
 *
 * Changing the password ends every other sign-in, as the API's change does. The account pages' own session
 * rests on a browser SSO session of the provider, and those all end with a password change (only a
 * first-party session can be kept): so this session ends too, and the person signs in again with the new
 * password, which the page that follows says.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import type { ActiveAccountSession } from '../../services/account/session.js';
import type { FactorPublicView, FactorService } from '../../services/mfa/factors.js';
import type { PasswordManagementService } from '../../services/password-management.js';
import { PASSWORD_MAX_LENGTH } from '../../services/password-policy.js';
import type { SignInProof } from '../../services/recent-sign-in.js';
import { CSRF_TOKEN_MAX_LENGTH } from '../../views/csrf.js';
import { seeOther } from '../../views/page.js';
import type { AccountContext } from './context.js';

export const SECURITY_PATH = '/account/security';

/** What a finished change says on the security page (`?done=`): fixed sentences, nothing from the query echoed. */
export const SECURITY_NOTICES = {
  totp: 'Your authenticator app was added.',
  sms: 'Your phone was added for codes by text message.',
  email: 'Your email address was added for codes by email.',
  preferred: 'Your preferred factor was changed.',
  removed: 'The factor was removed.',
  passkey: 'Your passkey was added.',
  passkey_renamed: 'The passkey was renamed.',
  passkey_removed: 'The passkey was removed.',
} as const;

const csrfField = z.string().max(CSRF_TOKEN_MAX_LENGTH);
const passwordForm = z.object({ csrf: csrfField, current_password: z.string().max(PASSWORD_MAX_LENGTH * 4), new_password: z.string().max(PASSWORD_MAX_LENGTH * 4) });
const csrfForm = z.object({ csrf: csrfField });
const idParams = z.object({ id: z.string().max(100) });
const doneQuery = z.object({ done: z.enum(Object.keys(SECURITY_NOTICES) as [keyof typeof SECURITY_NOTICES]).optional().catch(undefined) });

/** The account pages prove a recent sign-in with the provider's ID token (auth_time and amr, OpenID Connect Core §2). */
export const providerSignIn = (session: ActiveAccountSession): SignInProof => ({ providerSignIn: { at: new Date(session.authTime * 1000), amr: session.amr } });

const FACTOR_KINDS: Record<FactorPublicView['type'], string> = { totp: 'Authenticator app', sms: 'Text message', email: 'Email', recovery_code: 'Recovery codes', webauthn: 'Passkey' };

/** A factor as the page shows it. */
function factorView(f: FactorPublicView) {
  return {
    id: f.id,
    kind: FACTOR_KINDS[f.type],
    label: f.label,
    preferred: f.preferred,
    mayPrefer: f.active && !f.preferred && f.type !== 'recovery_code',
    detail: f.type === 'recovery_code' ? `${f.remaining ?? 0} unused` : `Added ${f.confirmed_at?.slice(0, 10) ?? ''}${f.last_used_at ? `, last used ${f.last_used_at.slice(0, 10)}` : ''}`,
  };
}

const day = (iso: string | null) => iso?.slice(0, 10);

/** A passkey as the pages show it (a passkey is a factor of type `webauthn`; its label is the name its owner gave it). */
export function passkeyView(p: { id: string; name: string; created_at: string; last_used_at: string | null }) {
  return { id: p.id, name: p.name, detail: `Added ${day(p.created_at)}, ${p.last_used_at ? `last used ${day(p.last_used_at)}` : 'not used yet'}` };
}

export interface SecurityDeps {
  context: AccountContext;
  factors: Pick<FactorService, 'list' | 'setPreferred' | 'remove'>;
  passwords: Pick<PasswordManagementService, 'changePassword'>;
  /** The password policy's length limits, described before submit (the full check runs on submit). */
  passwordMinLength: number;
}

export async function accountSecurityRoutes(app: FastifyInstance, deps: SecurityDeps): Promise<void> {
  const { context } = deps;
  const signedIn = { config: { page: true }, preHandler: context.requireSession };
  const sensitive = { config: { page: true }, preHandler: [context.requireSession, context.requireRecentSignIn] };
  const policy = { minLength: deps.passwordMinLength, maxLength: PASSWORD_MAX_LENGTH };

  async function sendSecurityPage(reply: FastifyReply, session: ActiveAccountSession, status: number, extra: { notice?: string | undefined; passwordError?: string }) {
    const active = (await deps.factors.list(session.user.id)).filter((f) => f.active);
    // Passkeys have their own section (name, rename); the other factors are listed together.
    const factors = active.filter((f) => f.type !== 'webauthn');
    const passkeys = active.filter((f) => f.type === 'webauthn').map((f) => passkeyView({ id: f.id, name: f.label, created_at: f.confirmed_at ?? f.created_at, last_used_at: f.last_used_at }));
    return context.send(reply, session, status, 'security', {
      title: 'Security',
      current: SECURITY_PATH,
      factors: factors.map(factorView),
      passkeys,
      hasRecoveryCodes: factors.some((f) => f.type === 'recovery_code'),
      policy,
      ...extra,
    });
  }

  app.get(SECURITY_PATH, signedIn, async (request, reply) => {
    const done = doneQuery.parse(request.query).done;
    return sendSecurityPage(reply, request.account!, 200, { notice: done ? SECURITY_NOTICES[done] : undefined });
  });

  app.post(`${SECURITY_PATH}/password`, sensitive, async (request, reply) => {
    const session = request.account!;
    const form = passwordForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    try {
      await deps.passwords.changePassword({ userId: session.user.id }, form.data.current_password, form.data.new_password, request.requestContext);
    } catch (err) {
      if (!(err instanceof AppError) || !['invalid_credentials', 'weak_password'].includes(err.code)) throw err;
      return sendSecurityPage(reply, session, 400, {
        passwordError: err.code === 'invalid_credentials' ? 'The current password is not correct.' : `The new password was not accepted: ${err.message}.`,
      });
    }
    // Every browser session ended with the change, this one's too (see the header).
    context.clearCookie(reply, context.sessionCookie);
    return seeOther(reply, `${SECURITY_PATH}/password-changed`);
  });

  app.get(`${SECURITY_PATH}/password-changed`, { config: { page: true } }, async (_request, reply) =>
    context.send(reply, undefined, 200, 'message', {
      title: 'Password changed',
      heading: 'Your password was changed',
      lines: ['You were signed out everywhere, here too. Sign in again with your new password.'],
      link: { href: SECURITY_PATH, label: 'Sign in again' },
    }),
  );

  app.post(`${SECURITY_PATH}/factors/:id/preferred`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = csrfForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await deps.factors.setPreferred(session.user, idParams.parse(request.params).id, request.requestContext);
    return seeOther(reply, `${SECURITY_PATH}?done=preferred`);
  });

  /** Another user's factor id (or none) answers 404 like the API's. */
  async function ownFactor(session: ActiveAccountSession, id: string): Promise<FactorPublicView> {
    const factor = (await deps.factors.list(session.user.id)).find((f) => f.id === id);
    if (!factor) throw new AppError('not_found', 'no such factor', 404);
    return factor;
  }

  app.get(`${SECURITY_PATH}/factors/:id/remove`, sensitive, async (request, reply) => {
    const session = request.account!;
    const factor = await ownFactor(session, idParams.parse(request.params).id);
    return context.send(reply, session, 200, 'security-remove', { title: 'Remove a factor', current: SECURITY_PATH, factor: factorView(factor) });
  });

  app.post(`${SECURITY_PATH}/factors/:id/remove`, sensitive, async (request, reply) => {
    const session = request.account!;
    const form = csrfForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await deps.factors.remove(session.user, idParams.parse(request.params).id, providerSignIn(session), request.requestContext);
    return seeOther(reply, `${SECURITY_PATH}?done=removed`);
  });
}
