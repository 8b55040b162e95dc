/**
 * Size: over 400 lines until the architecture issue splits it by concept (it is planned there, with the
 * split named); kept whole meanwhile so that security fixes landed in one place.
 *
 * The login and consent interaction that oidc-provider redirects browsers to. Pages are server-rendered
 * and work without JavaScript; every form carries a CSRF token bound to the interaction; POSTs answer 303.
 * Wrong credentials show one generic message whether or not the account exists. Password attempts go
 * through the same brute-force protection as the JSON API (per identifier, per known device, per IP).
 *
 * After the password, the login service may ask for further steps (a second factor, a code for a new
 * device or network, enrolment of a factor when MFA is required). Their state lives server-side in the
 * login challenge bound to this interaction; the provider's `login` result is written only once every step
 * is done, so nothing that signs the browser in exists before. The only state a page carries is the id of
 * a pending factor being enrolled (the user's own, useless without the code); a TOTP secret appears only on
 * the page that shows it.
 */
import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from 'oidc-provider';
import { z } from 'zod';
import { constantTimeEqual, hmacDigest } from '../../lib/crypto.js';
import type { ProviderHost } from '../../oidc/provider-host.js';
import { AppError } from '../../errors/index.js';
import { deviceCookieHeader, DEVICE_COOKIE, readCookie } from '../../lib/device-cookie.js';
import type { UserRow } from '../../queries/users.js';
import { describeScope } from '../../services/api-scopes.js';
import type { AuditService } from '../../services/audit.js';
import type { CompletedLogin, LoginService } from '../../services/login.js';
import type { FactorService } from '../../services/mfa/factors.js';
import { pageSecurityHeaders, renderPage } from '../../views/render.js';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../../errors/unavailable.js';

export interface InteractionRouteDeps {
  host: ProviderHost;
  login: LoginService;
  factors: FactorService;
  audit: AuditService;
  csrfKey: Buffer;
  secureCookies: boolean;
}

const uidParams = z.object({ uid: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });
const loginBody = z.object({ csrf: z.string().max(100), email: z.string().max(320), password: z.string().max(1024) });
const csrfBody = z.object({ csrf: z.string().max(100) });
const methodId = z.enum(['totp', 'sms', 'email', 'recovery_code']);
const codeMethod = z.enum(['sms', 'email']);
const enrollType = z.enum(['totp', 'sms', 'email']);
const code = z.string().trim().min(1).max(64);
const verifyBody = z.object({ method: methodId, code });
const resendBody = z.object({ method: codeMethod });
const phoneBody = z.object({ phone: z.string().trim().min(1).max(32) });
const emailBody = z.object({ email: z.string().trim().max(254).optional() });
const confirmParams = z.object({ type: enrollType });
const confirmBody = z.object({ factor_id: z.uuid(), code });
/** What a step page may be asked for; anything else in the query is ignored, never an error. */
const stepQuery = z.object({
  method: methodId.optional().catch(undefined),
  enroll: codeMethod.optional().catch(undefined),
  factor: z.uuid().optional().catch(undefined),
  sent: z.literal('1').optional().catch(undefined),
});

const GENERIC_LOGIN_ERROR = 'The email or password is incorrect.';
const EXPIRED_STEP = 'This sign-in took too long and has expired. Enter your password again.';
const ENDED_STEP = 'This sign-in can no longer continue. Enter your password again.';
const CHALLENGE_GONE = new Set(['challenge_expired', 'challenge_consumed', 'invalid_challenge']);

type Details = Awaited<ReturnType<ProviderHost['provider']['interactionDetails']>>;
type PendingStep = NonNullable<Awaited<ReturnType<LoginService['pendingForm']>>>;
type EnrollType = z.infer<typeof enrollType>;
type CodeMethod = z.infer<typeof codeMethod>;

/** What a step page shows besides the step itself: the method asked for, an error, and its status. */
interface StepView {
  status?: number | undefined;
  error?: string | undefined;
  method?: string | undefined;
  enroll?: CodeMethod | undefined;
  factorId?: string | undefined;
  sent?: boolean | undefined;
  retryAfter?: number | undefined;
  /** The address the user typed, kept when the address page is shown again with an error. */
  value?: string | undefined;
}

const tries = (left: number) => (left === 1 ? 'You have 1 more try.' : `You have ${left} more tries.`);
const isCodeMethod = (method: string): method is CodeMethod => method === 'sms' || method === 'email';

export async function interactionRoutes(app: FastifyInstance, deps: InteractionRouteDeps): Promise<void> {
  // Forms are tiny; anything larger is not a login.
  await app.register(formbody, { bodyLimit: 8 * 1024 });

  const csrfFor = (uid: string) => hmacDigest(deps.csrfKey, `interaction:${uid}`);
  const csrfValid = (uid: string, token: string) => constantTimeEqual(csrfFor(uid), token);

  function sendPage(reply: FastifyReply, status: number, template: string, model: { title: string; [k: string]: unknown }) {
    return reply.code(status).headers(pageSecurityHeaders).type('text/html; charset=utf-8').send(renderPage(template, model));
  }

  // These routes answer browsers: failures the handlers did not render (a body that is not a form, a
  // service error) become a page too, in plain words; 5xx are masked and logged.
  app.setErrorHandler((err: FastifyError | AppError, request, reply) => {
    if (isDatabaseUnavailable(err)) {
      request.log.warn({ err }, 'database unavailable');
      reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      return sendPage(reply, 503, 'message', { title: 'Temporarily unavailable', heading: 'Temporarily unavailable', lines: ['The service cannot complete this request right now. Try again in a moment.'] });
    }
    const status = err instanceof AppError ? err.status : typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return sendPage(reply, 500, 'message', { title: 'Something went wrong', heading: 'Something went wrong', lines: ['The request could not be completed. Try again in a moment.'] });
    }
    return sendPage(reply, status, 'message', { title: 'Request not understood', heading: 'Request not understood', lines: ['The form was not valid. Go back and try again.'] });
  });

  function expiredPage(reply: FastifyReply) {
    return sendPage(reply, 400, 'message', {
      title: 'Sign-in expired',
      heading: 'This sign-in has expired',
      lines: ['Go back to the application and start again.'],
    });
  }

  function refusedPage(reply: FastifyReply) {
    return sendPage(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Go back and try again.'] });
  }

  /** Loads the interaction this browser is in, or answers with the expired page. */
  async function load(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined> {
    const params = uidParams.safeParse(request.params);
    if (!params.success) {
      await expiredPage(reply);
      return undefined;
    }
    try {
      const details = await deps.host.provider.interactionDetails(request.raw, reply.raw);
      if (details.uid !== params.data.uid) {
        await expiredPage(reply);
        return undefined;
      }
      return details;
    } catch (err) {
      if (err instanceof errors.SessionNotFound || (err as { name?: string }).name === 'SessionNotFound') {
        await expiredPage(reply);
        return undefined;
      }
      throw err;
    }
  }

  /**
   * The guard of every step POST: this browser's interaction, a valid CSRF token (403 otherwise, checked
   * before the rest of the body is looked at), and a login still to be done.
   */
  async function loadStepForm(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined> {
    const details = await load(request, reply);
    if (!details) return undefined;
    const csrf = csrfBody.safeParse(request.body);
    if (!csrf.success || !csrfValid(details.uid, csrf.data.csrf)) {
      await refusedPage(reply);
      return undefined;
    }
    if (details.prompt.name !== 'login') {
      await expiredPage(reply);
      return undefined;
    }
    return details;
  }

  async function clientName(details: Details): Promise<string> {
    const clientId = String(details.params.client_id ?? '');
    const client = await deps.host.provider.Client.find(clientId);
    return client?.clientName ?? clientId;
  }

  function loginPage(reply: FastifyReply, details: Details, name: string, status = 200, error?: string, email?: string) {
    return sendPage(reply, status, 'login', {
      title: 'Sign in',
      clientName: name,
      action: `/interaction/${details.uid}/login`,
      abortAction: `/interaction/${details.uid}/abort`,
      csrf: csrfFor(details.uid),
      error,
      email,
    });
  }

  async function finish(request: FastifyRequest, reply: FastifyReply, result: Record<string, unknown>, merge: boolean) {
    const location = await deps.host.provider.interactionResult(request.raw, reply.raw, result, { mergeWithLastSubmission: merge });
    // 303: the browser must follow with GET, never re-POST the credentials (RFC 9700 §4.12).
    return reply.code(303).header('cache-control', 'no-store').redirect(location, 303);
  }

  /** 303 back to a page of this interaction (the next step, or the same one after a code was sent). */
  function seeOther(reply: FastifyReply, details: Details, query: Record<string, string> = {}) {
    const search = new URLSearchParams(query).toString();
    return reply.code(303).header('cache-control', 'no-store').redirect(`/interaction/${details.uid}${search ? `?${search}` : ''}`, 303);
  }


  /**
   * Every step is done: the one `login` success event of a browser login, then the provider's login result.
   * After a factor was enrolled, the user first gets recovery codes (if they have none): the page shows them
   * once and continues to where the provider would have redirected.
   */
  async function completeLogin(request: FastifyRequest, reply: FastifyReply, details: Details, completed: CompletedLogin, enrolled?: EnrollType) {
    const { user, amr } = completed;
    await deps.audit.record({
      type: 'login',
      outcome: 'success',
      actor: { type: 'user', id: user.id },
      subject: { type: 'user', id: user.id },
      clientId: String(details.params.client_id ?? ''),
      context: request.requestContext,
      details: { method: amr.join('+'), channel: 'form' },
    });
    if (!enrolled || (await deps.factors.countUnusedRecoveryCodes(user.id)) > 0) return finish(request, reply, { login: { accountId: user.id, amr } }, false);
    const codes = await deps.factors.generateRecoveryCodes(user, request.requestContext);
    const location = await deps.host.provider.interactionResult(request.raw, reply.raw, { login: { accountId: user.id, amr } }, { mergeWithLastSubmission: false });
    const factorName = enrolled === 'totp' ? 'authenticator app' : enrolled === 'sms' ? 'phone' : 'email access';
    return sendPage(reply, 200, 'mfa-recovery-codes', { title: 'Save your recovery codes', codes, continueHref: location, factorName });
  }

  /** Too many wrong codes: the challenge is dead; the way on is back to the application. */
  function endedPage(reply: FastifyReply, details: Details) {
    return sendPage(reply, 429, 'mfa-ended', {
      title: 'Sign-in ended',
      heading: 'Too many wrong codes',
      lines: ['For your security, this sign-in has ended.', 'Go back to the application and start again.'],
      abortAction: `/interaction/${details.uid}/abort`,
      csrf: csrfFor(details.uid),
    });
  }

  /** A challenge that can no longer be used: the ended page, or the password page to start over. */
  async function challengeGone(reply: FastifyReply, details: Details, err: unknown, status: number) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'too_many_attempts') return endedPage(reply, details);
    if (CHALLENGE_GONE.has(err.code)) return loginPage(reply, details, await clientName(details), status, err.code === 'challenge_expired' ? EXPIRED_STEP : ENDED_STEP);
    throw err;
  }

  /** The page of the interaction's current login step (the password page when none is open). */
  async function stepPage(request: FastifyRequest, reply: FastifyReply, details: Details, view: StepView = {}) {
    let step: PendingStep | undefined;
    try {
      step = await deps.login.pendingForm(details.uid, request.requestContext);
    } catch (err) {
      return challengeGone(reply, details, err, view.status ?? 200);
    }
    if (!step) return loginPage(reply, details, await clientName(details), view.status ?? 200, view.error);
    if (view.retryAfter !== undefined) reply.header('retry-after', String(view.retryAfter));
    if (step.reason === 'enroll') return enrollPage(reply, details, step, view);
    return verifyPage(reply, details, step, view);
  }

  async function verifyPage(reply: FastifyReply, details: Details, step: PendingStep, view: StepView) {
    const { reason, methods, firstMethod: first } = step;
    const method = view.method && methods.includes(view.method) ? view.method : first;
    if (!method) return endedPage(reply, details);
    const to = (m: CodeMethod) => step.destinations[m] ?? '';

    const lines: string[] = [];
    if (reason === 'new_device') lines.push("We don't recognize this device. To keep your account safe, confirm it's you.");
    if (reason === 'new_ip') lines.push("You're signing in from a network we haven't seen before. To keep your account safe, confirm it's you.");
    const forms: Array<{ action: string; label: string; fields: Array<{ name: string; value: string }> }> = [];
    if (method === 'totp') lines.push('Enter the 6-digit code from your authenticator app.');
    else if (method === 'recovery_code') lines.push('Enter one of the recovery codes you saved when you set up two-step verification. Each code works once.');
    else if (isCodeMethod(method)) {
      const sent = view.sent === true || method === first;
      lines.push(sent ? `We sent a code to ${to(method)}. It expires in 5 minutes.` : `We can send a code to ${to(method)}. Choose "Send a code", then enter it here.`);
      forms.push({ action: `/interaction/${details.uid}/resend`, label: sent ? 'Send a new code' : 'Send a code', fields: [{ name: 'method', value: method }] });
    }
    const switchLabel = (m: string) =>
      m === 'totp' ? 'Use your authenticator app' : m === 'recovery_code' ? 'Use a recovery code' : m === 'sms' ? `Get a code by text message (${to(m)})` : `Get a code by email (${to('email')})`;
    const title = reason === 'mfa' ? 'Two-step verification' : "Confirm it's you";
    return sendPage(reply, view.status ?? 200, 'mfa-code', {
      title,
      heading: title,
      lines,
      error: view.error,
      action: `/interaction/${details.uid}/verify`,
      csrf: csrfFor(details.uid),
      hidden: [{ name: 'method', value: method }],
      numeric: method !== 'recovery_code',
      forms,
      links: methods.filter((m) => m !== method).map((m) => ({ href: `/interaction/${details.uid}?method=${encodeURIComponent(m)}`, label: switchLabel(m) })),
      abortAction: `/interaction/${details.uid}/abort`,
    });
  }

  async function enrollPage(reply: FastifyReply, details: Details, step: PendingStep, view: StepView) {
    const base = { csrf: csrfFor(details.uid), abortAction: `/interaction/${details.uid}/abort`, chooseHref: `/interaction/${details.uid}` };
    const type = view.enroll && step.methods.includes(view.enroll) ? view.enroll : undefined;
    if (!type) {
      return sendPage(reply, view.status ?? 200, 'mfa-enroll', {
        title: 'Set up two-step verification',
        ...base,
        methods: step.methods,
        error: view.error,
        totpAction: `/interaction/${details.uid}/enroll/totp`,
        pageAction: `/interaction/${details.uid}`,
      });
    }
    let error = view.error;
    if (view.factorId) {
      const pending = (await deps.factors.list(step.user.id)).find((f) => f.id === view.factorId && f.type === type && !f.active);
      if (pending) {
        return sendPage(reply, view.status ?? 200, 'mfa-code', {
          title: 'Enter the code',
          heading: 'Enter the code',
          lines: [`We sent a code to ${pending.label}. It expires in 5 minutes.`],
          error,
          action: `/interaction/${details.uid}/enroll/${type}/confirm`,
          csrf: base.csrf,
          hidden: [{ name: 'factor_id', value: pending.id }],
          numeric: true,
          forms: [],
          links: [
            { href: `/interaction/${details.uid}?enroll=${type}`, label: type === 'sms' ? 'Use another number, or get a new code' : 'Use another address, or get a new code' },
            { href: base.chooseHref, label: 'Choose another method' },
          ],
          abortAction: base.abortAction,
        });
      }
      error ??= 'That setup has expired. Start again.';
    }
    const sms = type === 'sms';
    return sendPage(reply, view.status ?? 200, 'mfa-enroll-address', {
      title: sms ? 'Get codes by text message' : 'Get codes by email',
      heading: sms ? 'Get codes by text message' : 'Get codes by email',
      intro: sms
        ? 'Enter your mobile number with its country code, such as +14155552671. We will text it a code to check it.'
        : 'Codes will go to this address. We will send it a code to check it.',
      ...base,
      error,
      action: `/interaction/${details.uid}/enroll/${type}`,
      label: sms ? 'Phone number' : 'Email address',
      name: sms ? 'phone' : 'email',
      inputType: sms ? 'tel' : 'email',
      autocomplete: sms ? 'tel' : 'email',
      maxLength: sms ? 32 : 254,
      value: view.value ?? (sms ? undefined : step.user.email),
    });
  }

  function totpPage(reply: FastifyReply, details: Details, status: number, enrolled: { factor_id: string; secret: string; qr_code: string }, error?: string) {
    return sendPage(reply, status, 'mfa-enroll-totp', {
      title: 'Set up your authenticator app',
      secret: enrolled.secret,
      qrCode: enrolled.qr_code,
      factorId: enrolled.factor_id,
      error,
      action: `/interaction/${details.uid}/enroll/totp/confirm`,
      csrf: csrfFor(details.uid),
      chooseHref: `/interaction/${details.uid}`,
      abortAction: `/interaction/${details.uid}/abort`,
    });
  }

  /** A failed step action, shown on the step's page in plain words with its status. */
  async function stepError(request: FastifyRequest, reply: FastifyReply, details: Details, err: unknown, view: StepView = {}) {
    if (!(err instanceof AppError)) throw err;
    switch (err.code) {
      case 'invalid_code': {
        const left = Number(err.extra.attempts_left ?? 0);
        if (left <= 0) return endedPage(reply, details);
        return stepPage(request, reply, details, { ...view, status: 401, error: `That code is not correct. ${tries(left)}` });
      }
      case 'method_not_allowed':
        return stepPage(request, reply, details, { ...view, method: undefined, status: 400, error: 'That way of confirming is not available for this sign-in. Use one of the options on this page.' });
      case 'too_many_requests': {
        const wait = Number(err.extra.retry_after ?? 60);
        return stepPage(request, reply, details, { ...view, status: 429, retryAfter: wait, error: `Too many codes were sent. Wait ${wait} seconds before asking for a new one.` });
      }
      default:
        return challengeGone(reply, details, err, 400);
    }
  }

  /** A failed enrolment action (start or confirmation of a factor), shown on the enrolment page. */
  async function enrollError(request: FastifyRequest, reply: FastifyReply, details: Details, type: EnrollType, err: unknown, view: StepView = {}) {
    if (!(err instanceof AppError)) throw err;
    const enroll = type === 'totp' ? undefined : type;
    switch (err.code) {
      case 'invalid_request':
        return stepPage(request, reply, details, { ...view, enroll, status: 400, error: type === 'sms' ? 'Enter a valid mobile number with its country code, such as +14155552671.' : 'Enter a valid email address.' });
      case 'conflict':
        return stepPage(request, reply, details, { ...view, enroll, factorId: undefined, status: 409, error: type === 'sms' ? 'This number is already set up. Use another one.' : type === 'email' ? 'This address is already set up. Use another one.' : 'This method is already set up.' });
      case 'invalid_code': {
        const left = typeof err.extra.attempts_left === 'number' ? err.extra.attempts_left : undefined;
        if (left === 0) return stepPage(request, reply, details, { ...view, enroll, factorId: undefined, status: 401, error: 'Too many wrong codes. Ask for a new code.' });
        return stepPage(request, reply, details, { ...view, enroll, status: 401, error: `That code is not correct.${left === undefined ? '' : ` ${tries(left)}`}` });
      }
      case 'not_found':
        return stepPage(request, reply, details, { ...view, enroll, factorId: undefined, status: 400, error: 'That setup has expired. Start again.' });
      case 'challenge_expired':
        // The enrolment code (not the login) expired.
        return stepPage(request, reply, details, { ...view, enroll, factorId: undefined, status: 400, error: 'That code has expired. Ask for a new one.' });
      case 'too_many_attempts':
        return stepPage(request, reply, details, { ...view, enroll, factorId: undefined, status: 429, error: 'Too many wrong codes. Ask for a new code.' });
      default:
        return stepError(request, reply, details, err, { ...view, enroll });
    }
  }

  app.get('/interaction/:uid', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    if (details.prompt.name === 'login') {
      const query = stepQuery.safeParse(request.query ?? {});
      const q = query.success ? query.data : {};
      return stepPage(request, reply, details, { method: q.method, enroll: q.enroll, factorId: q.factor, sent: q.sent === '1' });
    }
    if (details.prompt.name === 'consent') {
      const name = await clientName(details);
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
      const scopes = [
        ...(missing.missingOIDCScope ?? []),
        ...Object.values(missing.missingResourceScopes ?? {}).flat(),
      ];
      return sendPage(reply, 200, 'consent', {
        title: 'Allow access',
        clientName: name,
        scopes: scopes.length ? [...new Set(scopes)].map(describeScope) : [describeScope('openid')],
        action: `/interaction/${details.uid}/confirm`,
        abortAction: `/interaction/${details.uid}/abort`,
        csrf: csrfFor(details.uid),
      });
    }
    return expiredPage(reply);
  });

  app.post('/interaction/:uid/login', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    const body = loginBody.safeParse(request.body);
    if (!body.success || !csrfValid(details.uid, body.data.csrf)) return refusedPage(reply);
    if (details.prompt.name !== 'login') return expiredPage(reply);
    const name = await clientName(details);

    const { email, password } = body.data;
    const clientId = String(details.params.client_id ?? '');
    let result: Awaited<ReturnType<LoginService['formLogin']>>;
    try {
      result = await deps.login.formLogin(
        { email, password, deviceCookie: readCookie(request.headers.cookie, DEVICE_COOKIE) },
        { ...request.requestContext, clientId, interactionUid: details.uid },
      );
    } catch (err) {
      if (err instanceof AppError && err.code === 'too_many_attempts') {
        const wait = Number(err.extra.retry_after ?? 60);
        reply.header('retry-after', String(wait));
        return loginPage(reply, details, name, 429, `Too many failed attempts. Try again in ${wait} seconds.`, email);
      }
      if (err instanceof AppError && err.code === 'too_many_requests') {
        // The password was right, but the first code of the next step could not be sent yet.
        const wait = Number(err.extra.retry_after ?? 60);
        reply.header('retry-after', String(wait));
        return loginPage(reply, details, name, 429, `Too many codes were sent to this account. Wait ${wait} seconds, then sign in again.`, email);
      }
      if (err instanceof AppError && err.code === 'invalid_credentials') return loginPage(reply, details, name, 401, GENERIC_LOGIN_ERROR, email);
      if (err instanceof AppError && err.code === 'password_reset_required') {
        return sendPage(reply, 403, 'message', {
          title: 'Password reset required',
          heading: 'Reset your password to sign in',
          lines: ['This account must get a new password before anyone can sign in to it again.', 'Reset your password, then sign in with the new one.'],
        });
      }
      throw err;
    }
    if (result.deviceCookie) reply.header('set-cookie', deviceCookieHeader(result.deviceCookie, deps.secureCookies));
    if (result.completed) return completeLogin(request, reply, details, result.completed);
    // A further step is pending: its page is the interaction's page now.
    return seeOther(reply, details);
  });

  app.post('/interaction/:uid/verify', async (request, reply) => {
    const details = await loadStepForm(request, reply);
    if (!details) return reply;
    const body = verifyBody.safeParse(request.body);
    if (!body.success) {
      const method = methodId.safeParse((request.body as { method?: unknown } | undefined)?.method);
      return stepPage(request, reply, details, { method: method.success ? method.data : undefined, status: 400, error: 'Enter the code.' });
    }
    const { method } = body.data;
    // People type codes with spaces; recovery codes keep their dashes (the factor service normalizes them).
    const typed = method === 'recovery_code' ? body.data.code : body.data.code.replace(/[\s-]+/g, '');
    let completed: CompletedLogin | undefined;
    try {
      completed = await deps.login.verifyForm(details.uid, method, typed, request.requestContext);
    } catch (err) {
      return stepError(request, reply, details, err, { method });
    }
    if (completed) return completeLogin(request, reply, details, completed);
    return seeOther(reply, details);
  });

  app.post('/interaction/:uid/resend', async (request, reply) => {
    const details = await loadStepForm(request, reply);
    if (!details) return reply;
    const body = resendBody.safeParse(request.body);
    if (!body.success) return stepPage(request, reply, details, { status: 400, error: 'Choose where to send the code.' });
    try {
      await deps.login.resendForm(details.uid, body.data.method, request.requestContext);
    } catch (err) {
      return stepError(request, reply, details, err, { method: body.data.method });
    }
    return seeOther(reply, details, { method: body.data.method, sent: '1' });
  });

  /** The user of the login waiting for enrolment; undefined once the page saying why there is none was sent. */
  async function enrollingUser(request: FastifyRequest, reply: FastifyReply, details: Details): Promise<UserRow | undefined> {
    try {
      return await deps.login.enrollmentForForm(details.uid, request.requestContext);
    } catch (err) {
      await stepError(request, reply, details, err);
      return undefined;
    }
  }

  app.post('/interaction/:uid/enroll/totp', async (request, reply) => {
    const details = await loadStepForm(request, reply);
    if (!details) return reply;
    const user = await enrollingUser(request, reply, details);
    if (!user) return reply;
    // The one POST that answers with a page: the secret exists only on the page that shows it.
    return totpPage(reply, details, 200, await deps.factors.enrollTotp(user, request.requestContext));
  });

  app.post('/interaction/:uid/enroll/sms', async (request, reply) => {
    const details = await loadStepForm(request, reply);
    if (!details) return reply;
    const body = phoneBody.safeParse(request.body);
    if (!body.success) return stepPage(request, reply, details, { enroll: 'sms', status: 400, error: 'Enter your phone number.' });
    const user = await enrollingUser(request, reply, details);
    if (!user) return reply;
    let factorId: string;
    try {
      factorId = (await deps.factors.enrollCodeFactor(user, 'sms', body.data.phone, request.requestContext)).factor_id;
    } catch (err) {
      return enrollError(request, reply, details, 'sms', err, { value: body.data.phone });
    }
    return seeOther(reply, details, { enroll: 'sms', factor: factorId });
  });

  app.post('/interaction/:uid/enroll/email', async (request, reply) => {
    const details = await loadStepForm(request, reply);
    if (!details) return reply;
    const body = emailBody.safeParse(request.body);
    const typed = body.success ? body.data.email || undefined : undefined;
    if (!body.success || (typed !== undefined && !z.email().safeParse(typed).success)) {
      return stepPage(request, reply, details, { enroll: 'email', status: 400, error: 'Enter a valid email address.', value: typed });
    }
    const user = await enrollingUser(request, reply, details);
    if (!user) return reply;
    let factorId: string;
    try {
      factorId = (await deps.factors.enrollCodeFactor(user, 'email', typed, request.requestContext)).factor_id;
    } catch (err) {
      return enrollError(request, reply, details, 'email', err, { value: typed });
    }
    return seeOther(reply, details, { enroll: 'email', factor: factorId });
  });

  app.post('/interaction/:uid/enroll/:type/confirm', async (request, reply) => {
    const params = confirmParams.safeParse(request.params);
    if (!params.success) return sendPage(reply, 404, 'message', { title: 'Not found', heading: 'Page not found', lines: ['Go back and try again.'] });
    const details = await loadStepForm(request, reply);
    if (!details) return reply;
    const { type } = params.data;
    const enroll = type === 'totp' ? undefined : type;
    const body = confirmBody.safeParse(request.body);
    if (!body.success) {
      const factorId = z.uuid().safeParse((request.body as { factor_id?: unknown } | undefined)?.factor_id);
      if (type === 'totp' && factorId.success) return totpRetryPage(reply, details, factorId.data, 400, 'Enter the code.');
      return stepPage(request, reply, details, { enroll, factorId: factorId.success ? factorId.data : undefined, status: 400, error: 'Enter the code.' });
    }
    const user = await enrollingUser(request, reply, details);
    if (!user) return reply;
    const factorId = body.data.factor_id;
    try {
      await deps.factors.confirm(user, type, factorId, body.data.code.replace(/[\s-]+/g, ''), request.requestContext);
    } catch (err) {
      if (type === 'totp' && err instanceof AppError && err.code === 'invalid_code') {
        return totpRetryPage(reply, details, factorId, 401, 'That code is not correct. Enter the code the app shows now, or show a new QR code and add the account again.');
      }
      return enrollError(request, reply, details, type, err, { factorId });
    }
    let completed: CompletedLogin | undefined;
    try {
      completed = await deps.login.completeFormEnrollment(details.uid, type, request.requestContext);
    } catch (err) {
      return stepError(request, reply, details, err);
    }
    if (completed) return completeLogin(request, reply, details, completed, type);
    return seeOther(reply, details);
  });

  /** A wrong TOTP confirmation: the code form again (without the secret, which only its own page shows). */
  function totpRetryPage(reply: FastifyReply, details: Details, factorId: string, status: number, error: string) {
    return sendPage(reply, status, 'mfa-code', {
      title: 'Set up your authenticator app',
      heading: 'Set up your authenticator app',
      lines: ['Enter the 6-digit code your authenticator app shows for this account.'],
      error,
      action: `/interaction/${details.uid}/enroll/totp/confirm`,
      csrf: csrfFor(details.uid),
      hidden: [{ name: 'factor_id', value: factorId }],
      numeric: true,
      forms: [{ action: `/interaction/${details.uid}/enroll/totp`, label: 'Show a new QR code', fields: [] }],
      links: [{ href: `/interaction/${details.uid}`, label: 'Choose another method' }],
      abortAction: `/interaction/${details.uid}/abort`,
    });
  }

  app.post('/interaction/:uid/confirm', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    const body = csrfBody.safeParse(request.body);
    if (!body.success || !csrfValid(details.uid, body.data.csrf) || details.prompt.name !== 'consent' || !details.session) {
      return sendPage(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Go back and try again.'] });
    }
    const provider = deps.host.provider;
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: String(details.params.client_id) });
    if (!grant) return expiredPage(reply);
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await deps.audit.record({
      type: 'consent',
      outcome: 'success',
      actor: { type: 'user', id: details.session.accountId },
      subject: { type: 'user', id: details.session.accountId },
      clientId: String(details.params.client_id),
      context: request.requestContext,
      details: { scopes: missing.missingOIDCScope ?? [], resources: Object.keys(missing.missingResourceScopes ?? {}) },
    });
    return finish(request, reply, { consent: { grantId } }, true);
  });

  app.post('/interaction/:uid/abort', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    const body = csrfBody.safeParse(request.body);
    if (!body.success || !csrfValid(details.uid, body.data.csrf)) {
      return sendPage(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Go back and try again.'] });
    }
    return finish(request, reply, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
  });
}
