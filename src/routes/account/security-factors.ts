/**
 * Adding second factors from the account pages: an authenticator app (QR code and setup key, confirmed with
 * a code from it), a phone or an email address (confirmed with the code sent there), and recovery codes
 * (shown once, with a text-file download right after generation). Starting any of them needs a sign-in within
 * RECENT_SIGN_IN_MAX_AGE, proved by the provider's ID token (factors.assertMayAddFactor, as the API's session
 * proves it); confirming one the session started needs nothing more, as in the API.
 *
 * What is shown once is answered by the POST itself (200, never cached) rather than a 303: a redirect would
 * need it kept somewhere to show it again. What a later form of the same page needs (the codes for their
 * download, the setup key when a code was wrong) travels sealed in that form (sealed-form-value.ts), bound to
 * this session, for a few minutes; the server keeps none of it in clear. Reloading the codes page re-posts
 * (the browser asks first) and makes a new set, which voids the shown one: never a silent second copy.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import type { ActiveAccountSession } from '../../services/account/session.js';
import type { FactorService } from '../../services/mfa/factors.js';
import { qrCodeDataUri } from '../../services/mfa/totp.js';
import { CSRF_TOKEN_MAX_LENGTH } from '../../views/csrf.js';
import { seeOther } from '../../views/page.js';
import type { AccountContext } from './context.js';
import { SEALED_VALUE_MAX_LENGTH, type SealedFormValues } from './sealed-form-value.js';
import { providerSignIn, SECURITY_PATH } from './security.js';

/** How long after generation the codes may be downloaded, and a shown setup key re-shown: one sitting. */
const SEALED_TTL_SECONDS = 10 * 60;

const csrfField = z.string().max(CSRF_TOKEN_MAX_LENGTH);
const sealedField = z.string().max(SEALED_VALUE_MAX_LENGTH);
const csrfForm = z.object({ csrf: csrfField });
const phoneForm = z.object({ csrf: csrfField, phone: z.string().max(64) });
const emailForm = z.object({ csrf: csrfField, email: z.string().max(254) });
const confirmForm = z.object({ csrf: csrfField, factor_id: z.string().max(100), code: z.string().trim().max(64), sealed: sealedField.optional() });
const downloadForm = z.object({ csrf: csrfField, sealed: sealedField });
const channelParams = z.object({ channel: z.enum(['sms', 'email']) });

interface TotpSetup {
  factorId: string;
  secret: string;
  uri: string;
}

const CHANNEL_COPY = {
  sms: { title: 'Add a phone', sent: 'We sent a code by text message to', field: 'phone' },
  email: { title: 'Add an email address', sent: 'We sent a code by email to', field: 'email' },
} as const;

export interface SecurityFactorDeps {
  context: AccountContext;
  factors: Pick<FactorService, 'assertMayAddFactor' | 'enrollTotp' | 'enrollCodeFactor' | 'confirm' | 'generateRecoveryCodes'>;
  sealed: SealedFormValues;
}

export async function accountSecurityFactorRoutes(app: FastifyInstance, deps: SecurityFactorDeps): Promise<void> {
  const { context, sealed } = deps;
  const signedIn = { config: { page: true }, preHandler: context.requireSession };
  const sensitive = { config: { page: true }, preHandler: [context.requireSession, context.requireRecentSignIn] };

  /** A form's AppError the person can act on (a wrong code, a bad number): shown on the form, not as an error page. */
  const userError = (err: unknown, codes: string[]): string | undefined => (err instanceof AppError && codes.includes(err.code) ? err.message : undefined);
  const mayAdd = (session: ActiveAccountSession, request: { requestContext: Parameters<FactorService['assertMayAddFactor']>[4] }, action: 'add_factor' | 'recovery_codes') =>
    deps.factors.assertMayAddFactor(session.user, providerSignIn(session), undefined, action, request.requestContext);

  async function sendTotpPage(reply: FastifyReply, session: ActiveAccountSession, status: number, setup: TotpSetup, error?: string) {
    return context.send(reply, session, status, 'security-totp', {
      title: 'Add an authenticator app',
      current: SECURITY_PATH,
      qrCode: await qrCodeDataUri(setup.uri),
      secret: setup.secret,
      factorId: setup.factorId,
      sealed: sealed.seal('totp-setup', session.id, setup, SEALED_TTL_SECONDS),
      error,
    });
  }

  app.post(`${SECURITY_PATH}/totp`, sensitive, async (request, reply) => {
    const session = request.account!;
    const form = csrfForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await mayAdd(session, request, 'add_factor');
    const started = await deps.factors.enrollTotp(session.user, request.requestContext);
    return sendTotpPage(reply, session, 200, { factorId: started.factor_id, secret: started.secret, uri: started.otpauth_uri });
  });

  app.post(`${SECURITY_PATH}/totp/confirm`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = confirmForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    try {
      await deps.factors.confirm(session.user, 'totp', form.data.factor_id, form.data.code, request.requestContext);
    } catch (err) {
      const setup = sealed.open<TotpSetup>('totp-setup', session.id, form.data.sealed);
      const message = userError(err, ['invalid_code']);
      if (!message || setup?.factorId !== form.data.factor_id) throw err;
      return sendTotpPage(reply, session, 400, setup, 'That code was not right. Enter the code the app shows now.');
    }
    return seeOther(reply, `${SECURITY_PATH}?done=totp`);
  });

  app.get(`${SECURITY_PATH}/:channel/add`, sensitive, async (request, reply) => {
    const { channel } = channelParams.parse(request.params);
    const session = request.account!;
    return context.send(reply, session, 200, 'security-address', { title: CHANNEL_COPY[channel].title, current: SECURITY_PATH, channel, value: channel === 'email' ? session.user.email : '' });
  });

  app.post(`${SECURITY_PATH}/:channel/add`, sensitive, async (request, reply) => {
    const { channel } = channelParams.parse(request.params);
    const session = request.account!;
    const form = (channel === 'sms' ? phoneForm : emailForm).safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const value = 'phone' in form.data ? form.data.phone : form.data.email;
    let factorId: string;
    try {
      const address = channel === 'email' ? z.email({ message: 'this is not an email address' }).parse(value.trim()) : value;
      await mayAdd(session, request, 'add_factor');
      factorId = (await deps.factors.enrollCodeFactor(session.user, channel, address, request.requestContext)).factor_id;
    } catch (err) {
      const message = err instanceof z.ZodError ? err.issues[0]?.message : userError(err, ['invalid_request', 'conflict', 'too_many_requests', 'too_many_attempts']);
      if (!message) throw err;
      return context.send(reply, session, 400, 'security-address', { title: CHANNEL_COPY[channel].title, current: SECURITY_PATH, channel, value, error: message });
    }
    return context.send(reply, session, 200, 'security-code', { title: CHANNEL_COPY[channel].title, current: SECURITY_PATH, channel, factorId, sent: `${CHANNEL_COPY[channel].sent} ${value.trim()}.` });
  });

  app.post(`${SECURITY_PATH}/:channel/confirm`, signedIn, async (request, reply) => {
    const { channel } = channelParams.parse(request.params);
    const session = request.account!;
    const form = confirmForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    try {
      await deps.factors.confirm(session.user, channel, form.data.factor_id, form.data.code, request.requestContext);
    } catch (err) {
      const message = userError(err, ['invalid_code']);
      if (!message) throw err;
      const left = err instanceof AppError && typeof err.extra.attempts_left === 'number' ? ` ${err.extra.attempts_left} attempts left.` : '';
      return context.send(reply, session, 400, 'security-code', { title: CHANNEL_COPY[channel].title, current: SECURITY_PATH, channel, factorId: form.data.factor_id, error: `That code was not right.${left}` });
    }
    return seeOther(reply, `${SECURITY_PATH}?done=${channel}`);
  });

  app.get(`${SECURITY_PATH}/recovery-codes`, sensitive, async (request, reply) =>
    context.send(reply, request.account!, 200, 'security-recovery', { title: 'Recovery codes', current: SECURITY_PATH }),
  );

  app.post(`${SECURITY_PATH}/recovery-codes`, sensitive, async (request, reply) => {
    const session = request.account!;
    const form = csrfForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await mayAdd(session, request, 'recovery_codes');
    const codes = await deps.factors.generateRecoveryCodes(session.user, request.requestContext);
    return context.send(reply, session, 200, 'security-recovery-codes', {
      title: 'Your new recovery codes',
      current: SECURITY_PATH,
      codes,
      sealed: sealed.seal('recovery-codes', session.id, codes, SEALED_TTL_SECONDS),
    });
  });

  // The download carries the codes sealed in the form of the page that showed them: it works only for this
  // session, only for ten minutes after generation, and only for the set that page showed.
  app.post(`${SECURITY_PATH}/recovery-codes/download`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = downloadForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const codes = sealed.open<string[]>('recovery-codes', session.id, form.data.sealed);
    if (!codes) {
      return context.send(reply, session, 410, 'message', {
        title: 'Download expired',
        heading: 'This download has expired',
        lines: ['Recovery codes can be downloaded only right after they are created. Create a new set to download it.'],
        link: { href: `${SECURITY_PATH}/recovery-codes`, label: 'Create new recovery codes' },
      });
    }
    const text = [`Recovery codes for ${session.user.email}`, 'Each code signs you in once. Keep them somewhere safe.', '', ...codes, ''].join('\n');
    return reply
      .header('cache-control', 'no-store')
      .header('content-disposition', 'attachment; filename="recovery-codes.txt"')
      .header('x-content-type-options', 'nosniff')
      .type('text/plain; charset=utf-8')
      .send(text);
  });
}
