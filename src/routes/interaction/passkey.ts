/**
 * Passkeys in the login interaction, one pair of routes for its three uses, chosen by the interaction's
 * server-side state (never by the form): with no step open, a passwordless sign-in (a discoverable
 * credential with user verification, the first factor); at a step after the password, the passkey as a
 * method of that step (a second factor, or the check of a new device or network); at enrolment, a new
 * passkey as the factor that enrolment asks for.
 *
 * POST /interaction/:uid/passkey/options answers the ceremony's options as JSON to the page's script (the
 * interaction's CSRF token in the body; the challenge is stored server-side, single use, bound to this
 * interaction or its login challenge, five minutes). POST /interaction/:uid/passkey is a form: the CSRF
 * token and the ceremony's result; it goes through the login service like the password and the code step
 * (brute-force counters, new-device and new-network rules, MFA plan, audit) and answers 303.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { deviceCookieHeader, DEVICE_COOKIE, readCookie } from '../../lib/device-cookie.js';
import type { CompletedLogin } from '../../services/login/index.js';
import { CSRF_TOKEN_MAX_LENGTH } from '../../views/csrf.js';
import { sendPage } from '../../views/page.js';
import { parseAuthenticationResponse, parseRegistrationResponse, PASSKEY_RESPONSE_MAX_LENGTH } from '../passkey-responses.js';
import type { Details, InteractionContext } from './context.js';
import { PASSKEY_METHOD, PASSKEY_NOT_ACCEPTED, passkeyStepError } from './passkey-views.js';
import type { InteractionSteps } from './steps.js';
import { loginView, passwordErrorOutcome, passwordResetRequiredView, type PendingStep } from './views.js';

const uidParams = z.object({ uid: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });
const optionsBody = z.object({ csrf: z.string().max(CSRF_TOKEN_MAX_LENGTH) });
const resultForm = z.object({ csrf: z.string().max(CSRF_TOKEN_MAX_LENGTH), response: z.string().max(PASSKEY_RESPONSE_MAX_LENGTH) });

/** Which ceremony the interaction is at: a passwordless sign-in, a step's passkey, or enrolment of one. */
type PasskeyUse = { kind: 'sign_in' } | { kind: 'step'; step: PendingStep } | { kind: 'enroll'; step: PendingStep };

export function passkeyRoutes(app: FastifyInstance, ctx: InteractionContext, steps: InteractionSteps): void {
  const { login } = ctx.deps;
  const ref = (details: Details) => ({ channel: 'form' as const, interactionUid: details.uid });

  /** The interaction's use of a passkey now; undefined when its open step offers none. */
  async function useOf(request: FastifyRequest, details: Details): Promise<PasskeyUse | undefined> {
    const step = await login.pendingStep(details.uid, request.requestContext);
    if (!step) return { kind: 'sign_in' };
    if (!step.methods.includes(PASSKEY_METHOD)) return undefined;
    return step.reason === 'enroll' ? { kind: 'enroll', step } : { kind: 'step', step };
  }

  // JSON for the page's script (not a page route: its errors are the JSON error shape).
  app.post('/interaction/:uid/passkey/options', async (request, reply) => {
    const params = uidParams.safeParse(request.params);
    // No interaction cookie, or another interaction's: nothing to sign in to.
    const details = params.success ? await ctx.deps.host.provider.interactionDetails(request.raw, reply.raw).catch(() => undefined) : undefined;
    const body = optionsBody.safeParse(request.body);
    if (!details || details.uid !== params.data?.uid || details.prompt.name !== 'login') throw new AppError('not_found', 'no such sign-in', 404);
    if (!body.success || !ctx.csrfValid(details, body.data.csrf)) throw new AppError('forbidden', 'the form was not valid', 403);
    const use = await useOf(request, details);
    if (!use) throw new AppError('method_not_allowed', 'a passkey cannot be used at this step', 400);
    let options: object;
    if (use.kind === 'sign_in') options = await login.passwordlessOptions({ channel: 'form', interactionUid: details.uid });
    else if (use.kind === 'step') options = await login.stepPasskeyOptions(ref(details), request.requestContext);
    else {
      const { user, binding } = await login.passkeyEnrolment(ref(details), request.requestContext);
      options = await ctx.deps.passkeys.registrationOptions(user, binding);
    }
    return reply.header('cache-control', 'no-store').send(options);
  });

  app.post('/interaction/:uid/passkey', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.loadStepForm(request, reply);
    if (!details) return reply;
    const form = resultForm.safeParse(request.body);
    let use: PasskeyUse | undefined;
    try {
      use = await useOf(request, details);
    } catch (err) {
      return steps.stepError(request, reply, details, err);
    }
    if (!use) return steps.stepPage(request, reply, details, { status: 400, error: 'A passkey cannot be used for this step. Use one of the options on this page.' });
    const text = form.success ? form.data.response : '';
    if (use.kind === 'sign_in') return signIn(request, reply, details, text);
    if (use.kind === 'enroll') return enrol(request, reply, details, text);
    return verifyStep(request, reply, details, text);
  });

  /** The first factor: a passwordless sign-in, answered like the password step. */
  async function signIn(request: FastifyRequest, reply: FastifyReply, details: Details, text: string): Promise<FastifyReply> {
    const name = await ctx.clientName(details);
    const response = parseAuthenticationResponse(text);
    if (!response) return sendPage(reply, loginView(ctx.pageOf(details), name, 400, PASSKEY_NOT_ACCEPTED));
    let result: Awaited<ReturnType<typeof login.startWithPasskey<'form'>>>;
    try {
      result = await login.startWithPasskey(
        response,
        { channel: 'form', clientId: String(details.params.client_id ?? ''), interactionUid: details.uid, deviceCookie: readCookie(request.headers.cookie, DEVICE_COOKIE) },
        request.requestContext,
      );
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      // Anything else the client caused (a challenge used, expired or not this interaction's): the same words.
      const shown = passwordErrorOutcome(err) ?? (err.status < 500 ? { status: err.status, error: PASSKEY_NOT_ACCEPTED } : undefined);
      if (!shown) throw err;
      if (shown === 'reset_required') return sendPage(reply, passwordResetRequiredView());
      if (shown.retryAfter !== undefined) reply.header('retry-after', String(shown.retryAfter));
      return sendPage(reply, loginView(ctx.pageOf(details), name, shown.status, shown.status === 401 ? PASSKEY_NOT_ACCEPTED : shown.error));
    }
    if (result.deviceCookie) reply.header('set-cookie', deviceCookieHeader(result.deviceCookie, ctx.deps.secureCookies));
    if (result.answer) return steps.completeLogin(request, reply, details, result.answer);
    return ctx.seeOther(reply, details);
  }

  /** A step after the password, passed with a passkey. */
  async function verifyStep(request: FastifyRequest, reply: FastifyReply, details: Details, text: string): Promise<FastifyReply> {
    const response = parseAuthenticationResponse(text);
    if (!response) return steps.stepPage(request, reply, details, { method: PASSKEY_METHOD, status: 400, error: 'That passkey was not accepted. Try again.' });
    let completed: CompletedLogin | undefined;
    try {
      completed = await login.verify(ref(details), PASSKEY_METHOD, JSON.stringify(response), request.requestContext);
    } catch (err) {
      const shown = err instanceof AppError ? passkeyStepError(err, { method: PASSKEY_METHOD }) : undefined;
      if (shown) return steps.stepPage(request, reply, details, shown);
      return steps.stepError(request, reply, details, err, { method: PASSKEY_METHOD });
    }
    if (completed) return steps.completeLogin(request, reply, details, completed);
    return ctx.seeOther(reply, details);
  }

  /** Enrolment at sign-in: the new passkey is the factor, then the login goes on. */
  async function enrol(request: FastifyRequest, reply: FastifyReply, details: Details, text: string): Promise<FastifyReply> {
    const response = parseRegistrationResponse(text);
    if (!response) return steps.stepPage(request, reply, details, { status: 400, error: 'The passkey could not be set up. Try again, or choose another method.' });
    let completed: CompletedLogin | undefined;
    try {
      const { user, binding } = await login.passkeyEnrolment(ref(details), request.requestContext);
      const { amr } = await ctx.deps.passkeys.verifyRegistration(user, binding, response, undefined, request.requestContext);
      completed = await login.completeEnrollment(ref(details), PASSKEY_METHOD, request.requestContext, amr);
    } catch (err) {
      if (err instanceof AppError && err.status < 500 && !['challenge_expired', 'challenge_consumed', 'invalid_challenge', 'too_many_attempts'].includes(err.code)) {
        return steps.stepPage(request, reply, details, { status: 400, error: 'The passkey could not be set up. Try again, or choose another method.' });
      }
      return steps.stepError(request, reply, details, err);
    }
    if (completed) return steps.completeLogin(request, reply, details, completed, 'webauthn');
    return ctx.seeOther(reply, details);
  }
}
