/**
 * The code step after the password (a second factor, or a check of a new device or network): POST
 * /interaction/:uid/verify checks a code, POST /interaction/:uid/resend sends a new one. Its state lives
 * server-side in the login challenge bound to the interaction; the page carries only the method.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { CompletedLogin } from '../../services/login/index.js';
import type { InteractionContext } from './context.js';
import type { InteractionSteps } from './steps.js';

export const methodId = z.enum(['totp', 'sms', 'email', 'recovery_code']);
export const codeMethod = z.enum(['sms', 'email']);
const code = z.string().trim().min(1).max(64);
const verifyBody = z.object({ method: methodId, code });
const resendBody = z.object({ method: codeMethod });

export function codeStepRoutes(app: FastifyInstance, ctx: InteractionContext, steps: InteractionSteps): void {
  app.post('/interaction/:uid/verify', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.loadStepForm(request, reply);
    if (!details) return reply;
    const body = verifyBody.safeParse(request.body);
    if (!body.success) {
      const method = methodId.safeParse((request.body as { method?: unknown } | undefined)?.method);
      return steps.stepPage(request, reply, details, { method: method.success ? method.data : undefined, status: 400, error: 'Enter the code.' });
    }
    const { method } = body.data;
    // People type codes with spaces; recovery codes keep their dashes (the factor service normalizes them).
    const typed = method === 'recovery_code' ? body.data.code : body.data.code.replace(/[\s-]+/g, '');
    let completed: CompletedLogin | undefined;
    try {
      completed = await ctx.deps.login.verify({ channel: 'form', interactionUid: details.uid }, method, typed, request.requestContext);
    } catch (err) {
      return steps.stepError(request, reply, details, err, { method });
    }
    if (completed) return steps.completeLogin(request, reply, details, completed);
    return ctx.seeOther(reply, details);
  });

  app.post('/interaction/:uid/resend', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.loadStepForm(request, reply);
    if (!details) return reply;
    const body = resendBody.safeParse(request.body);
    if (!body.success) return steps.stepPage(request, reply, details, { status: 400, error: 'Choose where to send the code.' });
    try {
      await ctx.deps.login.resend({ channel: 'form', interactionUid: details.uid }, body.data.method, request.requestContext);
    } catch (err) {
      return steps.stepError(request, reply, details, err, { method: body.data.method });
    }
    return ctx.seeOther(reply, details, { method: body.data.method, sent: '1' });
  });
}
