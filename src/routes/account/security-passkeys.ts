/**
 * Passkeys on the security settings page: add one (a registration ceremony in the browser, after a sign-in
 * within RECENT_SIGN_IN_MAX_AGE), rename one, remove one (re-authentication: a recent sign-in, as for any
 * factor). The ceremony needs JavaScript: the page's script asks POST .../options for the creation options
 * (JSON, same CSRF token; the challenge is stored server-side, bound to this account session, single use,
 * five minutes), runs the ceremony, and posts the result with the form; without JavaScript or WebAuthn the
 * page says so and nothing else changes. Another user's passkey id answers 404 like the API's.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import type { ActiveAccountSession } from '../../services/account/session.js';
import { CSRF_TOKEN_MAX_LENGTH } from '../../views/csrf.js';
import { seeOther } from '../../views/page.js';
import { passkeyScript } from '../../views/passkey-script.js';
import type { AccountContext } from './context.js';
import { passkeyView, providerSignIn, SECURITY_PATH } from './security.js';
import type { FactorService } from '../../services/mfa/factors.js';
import type { PasskeyService, PasskeyView } from '../../services/passkeys/service.js';
import { parseRegistrationResponse, PASSKEY_RESPONSE_MAX_LENGTH } from '../passkey-responses.js';

const PASSKEYS_PATH = `${SECURITY_PATH}/passkeys`;
/** A name people recognise a device by; longer is not a name. */
export const PASSKEY_NAME_MAX_LENGTH = 64;

const csrfField = z.string().max(CSRF_TOKEN_MAX_LENGTH);
const nameField = z.string().trim().min(1).max(PASSKEY_NAME_MAX_LENGTH);
const optionsBody = z.object({ csrf: csrfField });
const addForm = z.object({ csrf: csrfField, name: z.string().max(PASSKEY_NAME_MAX_LENGTH * 4), response: z.string().max(PASSKEY_RESPONSE_MAX_LENGTH) });
const renameForm = z.object({ csrf: csrfField, name: z.string().max(PASSKEY_NAME_MAX_LENGTH * 4) });
const csrfForm = z.object({ csrf: csrfField });
const idParams = z.object({ id: z.string().max(100) });

const NOT_ADDED = 'The passkey could not be added. Create it again.';
/** Registration challenges of these pages are bound to the account session that asked for them. */
const accountBinding = (session: ActiveAccountSession) => ({ kind: 'account' as const, id: session.id });
export interface SecurityPasskeyDeps {
  context: AccountContext;
  passkeys: Pick<PasskeyService, 'registrationOptions' | 'verifyRegistration' | 'list' | 'rename'>;
  /** A passkey is a factor: adding one needs what adding any factor needs, removing one is removing a factor. */
  factors: Pick<FactorService, 'assertMayAddFactor' | 'remove'>;
}

export async function accountSecurityPasskeyRoutes(app: FastifyInstance, deps: SecurityPasskeyDeps): Promise<void> {
  const { context, passkeys, factors } = deps;
  const signedIn = { config: { page: true }, preHandler: context.requireSession };
  const sensitive = { config: { page: true }, preHandler: [context.requireSession, context.requireRecentSignIn] };

  function sendAddPage(reply: FastifyReply, session: ActiveAccountSession, status: number, name: string, error?: string) {
    return context.send(reply, session, status, 'security-passkey-add', { title: 'Add a passkey', current: SECURITY_PATH, name, error, script: passkeyScript }, { scripts: true });
  }

  async function ownPasskey(session: ActiveAccountSession, id: string): Promise<PasskeyView> {
    const found = (await passkeys.list(session.user.id)).find((p) => p.id === id);
    if (!found) throw new AppError('not_found', 'no such passkey', 404);
    return found;
  }

  app.get(`${PASSKEYS_PATH}/add`, sensitive, async (request, reply) => sendAddPage(reply, request.account!, 200, ''));

  // JSON for the page's script (not a page route: its errors are the JSON error shape).
  app.post(`${PASSKEYS_PATH}/options`, { preHandler: context.requireSession }, async (request, reply) => {
    const session = request.account!;
    const body = optionsBody.safeParse(request.body);
    if (!body.success || !context.csrfValid(session, body.data.csrf)) throw new AppError('forbidden', 'the form was not valid', 403);
    await factors.assertMayAddFactor(session.user, providerSignIn(session), undefined, 'add_factor', request.requestContext);
    const options = await passkeys.registrationOptions(session.user, accountBinding(session));
    return reply.header('cache-control', 'no-store').send(options);
  });

  app.post(`${PASSKEYS_PATH}/add`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = addForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const name = nameField.safeParse(form.data.name);
    if (!name.success) return sendAddPage(reply, session, 400, form.data.name.slice(0, PASSKEY_NAME_MAX_LENGTH), 'Give the passkey a name, then create it again.');
    const response = parseRegistrationResponse(form.data.response);
    if (!response) return sendAddPage(reply, session, 400, name.data, NOT_ADDED);
    try {
      await passkeys.verifyRegistration(session.user, accountBinding(session), response, name.data, request.requestContext);
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      return sendAddPage(reply, session, 400, name.data, NOT_ADDED);
    }
    return seeOther(reply, `${SECURITY_PATH}?done=passkey`);
  });

  app.get(`${PASSKEYS_PATH}/:id/rename`, signedIn, async (request, reply) => {
    const session = request.account!;
    const passkey = await ownPasskey(session, idParams.parse(request.params).id);
    return context.send(reply, session, 200, 'security-passkey-rename', { title: 'Rename a passkey', current: SECURITY_PATH, passkey: passkeyView(passkey) });
  });

  app.post(`${PASSKEYS_PATH}/:id/rename`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = renameForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const passkey = await ownPasskey(session, idParams.parse(request.params).id);
    const name = nameField.safeParse(form.data.name);
    if (!name.success) {
      return context.send(reply, session, 400, 'security-passkey-rename', { title: 'Rename a passkey', current: SECURITY_PATH, passkey: { ...passkeyView(passkey), name: '' }, error: `Enter a name of 1 to ${PASSKEY_NAME_MAX_LENGTH} characters.` });
    }
    await passkeys.rename(session.user, passkey.id, name.data, request.requestContext);
    return seeOther(reply, `${SECURITY_PATH}?done=passkey_renamed`);
  });

  app.get(`${PASSKEYS_PATH}/:id/remove`, sensitive, async (request, reply) => {
    const session = request.account!;
    const passkey = await ownPasskey(session, idParams.parse(request.params).id);
    return context.send(reply, session, 200, 'security-passkey-remove', { title: 'Remove a passkey', current: SECURITY_PATH, passkey: passkeyView(passkey) });
  });

  app.post(`${PASSKEYS_PATH}/:id/remove`, sensitive, async (request, reply) => {
    const session = request.account!;
    const form = csrfForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const passkey = await ownPasskey(session, idParams.parse(request.params).id);
    await factors.remove(session.user, passkey.id, providerSignIn(session), request.requestContext);
    return seeOther(reply, `${SECURITY_PATH}?done=passkey_removed`);
  });
}
