/**
 * Enrolment of a factor during sign-in, when MFA is required and the account has none: TOTP (the secret
 * appears only on the page that shows it), or a phone number or address confirmed by a code. The only
 * state a page carries is the id of the pending factor (the user's own, useless without the code).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import type { CompletedLogin } from '../../services/login/index.js';
import type { InteractionContext } from './context.js';
import type { InteractionSteps } from './steps.js';
import { notFoundView, TOTP_WRONG_CODE, totpRetryView, totpView } from './views.js';
import { sendPage } from '../../views/page.js';

const enrollType = z.enum(['totp', 'sms', 'email']);
const code = z.string().trim().min(1).max(64);
const phoneBody = z.object({ phone: z.string().trim().min(1).max(32) });
const emailBody = z.object({ email: z.string().trim().max(254).optional() });
const confirmParams = z.object({ type: enrollType });
const confirmBody = z.object({ factor_id: z.uuid(), code });

export function enrolmentRoutes(app: FastifyInstance, ctx: InteractionContext, steps: InteractionSteps): void {
  const { factors } = ctx.deps;

  app.post('/interaction/:uid/enroll/totp', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.loadStepForm(request, reply);
    if (!details) return reply;
    const user = await steps.enrollingUser(request, reply, details);
    if (!user) return reply;
    // The one POST that answers with a page: the secret exists only on the page that shows it.
    return sendPage(reply, totpView(ctx.pageOf(details), await factors.enrollTotp(user, request.requestContext)));
  });

  app.post('/interaction/:uid/enroll/sms', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.loadStepForm(request, reply);
    if (!details) return reply;
    const body = phoneBody.safeParse(request.body);
    if (!body.success) return steps.stepPage(request, reply, details, { enroll: 'sms', status: 400, error: 'Enter your phone number.' });
    const user = await steps.enrollingUser(request, reply, details);
    if (!user) return reply;
    let factorId: string;
    try {
      factorId = (await factors.enrollCodeFactor(user, 'sms', body.data.phone, request.requestContext)).factor_id;
    } catch (err) {
      return steps.enrollError(request, reply, details, 'sms', err, { value: body.data.phone });
    }
    return ctx.seeOther(reply, details, { enroll: 'sms', factor: factorId });
  });

  app.post('/interaction/:uid/enroll/email', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.loadStepForm(request, reply);
    if (!details) return reply;
    const body = emailBody.safeParse(request.body);
    const typed = body.success ? body.data.email || undefined : undefined;
    if (!body.success || (typed !== undefined && !z.email().safeParse(typed).success)) {
      return steps.stepPage(request, reply, details, { enroll: 'email', status: 400, error: 'Enter a valid email address.', value: typed });
    }
    const user = await steps.enrollingUser(request, reply, details);
    if (!user) return reply;
    let factorId: string;
    try {
      factorId = (await factors.enrollCodeFactor(user, 'email', typed, request.requestContext)).factor_id;
    } catch (err) {
      return steps.enrollError(request, reply, details, 'email', err, { value: typed });
    }
    return ctx.seeOther(reply, details, { enroll: 'email', factor: factorId });
  });

  app.post('/interaction/:uid/enroll/:type/confirm', { config: { page: true } }, async (request, reply) => {
    const params = confirmParams.safeParse(request.params);
    if (!params.success) return sendPage(reply, notFoundView());
    const details = await ctx.loadStepForm(request, reply);
    if (!details) return reply;
    const { type } = params.data;
    const enroll = type === 'totp' ? undefined : type;
    const page = ctx.pageOf(details);
    const body = confirmBody.safeParse(request.body);
    if (!body.success) {
      const factorId = z.uuid().safeParse((request.body as { factor_id?: unknown } | undefined)?.factor_id);
      if (type === 'totp' && factorId.success) return sendPage(reply, totpRetryView(page, factorId.data, 400, 'Enter the code.'));
      return steps.stepPage(request, reply, details, { enroll, factorId: factorId.success ? factorId.data : undefined, status: 400, error: 'Enter the code.' });
    }
    const user = await steps.enrollingUser(request, reply, details);
    if (!user) return reply;
    const factorId = body.data.factor_id;
    try {
      await factors.confirm(user, type, factorId, body.data.code.replace(/[\s-]+/g, ''), request.requestContext);
    } catch (err) {
      if (type === 'totp' && err instanceof AppError && err.code === 'invalid_code') return sendPage(reply, totpRetryView(page, factorId, 401, TOTP_WRONG_CODE));
      return steps.enrollError(request, reply, details, type, err, { factorId });
    }
    let completed: CompletedLogin | undefined;
    try {
      completed = await ctx.deps.login.completeEnrollment({ channel: 'form', interactionUid: details.uid }, type, request.requestContext);
    } catch (err) {
      return steps.stepError(request, reply, details, err);
    }
    if (completed) return steps.completeLogin(request, reply, details, completed, type);
    return ctx.seeOther(reply, details);
  });
}
