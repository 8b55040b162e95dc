/**
 * The password step: POST /interaction/:uid/login. Wrong credentials show one generic message whether or
 * not the account exists. Password attempts go through the same brute-force protection as the JSON API
 * (per identifier, per known device, per IP); that happens in the login service.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { deviceCookieHeader, DEVICE_COOKIE, readCookie } from '../../lib/device-cookie.js';
import type { InteractionContext } from './context.js';
import type { InteractionSteps } from './steps.js';
import { expiredView, loginView, passwordErrorOutcome, passwordResetRequiredView, refusedView } from './views.js';
import { sendPage } from '../../views/page.js';

const loginBody = z.object({ csrf: z.string().max(100), email: z.string().max(320), password: z.string().max(1024) });

export function passwordRoutes(app: FastifyInstance, ctx: InteractionContext, steps: InteractionSteps): void {
  app.post('/interaction/:uid/login', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.load(request, reply);
    if (!details) return reply;
    const body = loginBody.safeParse(request.body);
    if (!body.success || !ctx.csrfValid(details, body.data.csrf)) return sendPage(reply, refusedView());
    if (details.prompt.name !== 'login') return sendPage(reply, expiredView());
    const name = await ctx.clientName(details);

    const { email, password } = body.data;
    const clientId = String(details.params.client_id ?? '');
    let result: Awaited<ReturnType<typeof ctx.deps.login.start<'form'>>>;
    try {
      result = await ctx.deps.login.start(
        { email, password, deviceCookie: readCookie(request.headers.cookie, DEVICE_COOKIE) },
        { channel: 'form', clientId, interactionUid: details.uid },
        request.requestContext,
      );
    } catch (err) {
      const shown = err instanceof AppError ? passwordErrorOutcome(err) : undefined;
      if (!shown) throw err;
      if (shown === 'reset_required') return sendPage(reply, passwordResetRequiredView());
      if (shown.retryAfter !== undefined) reply.header('retry-after', String(shown.retryAfter));
      return sendPage(reply, loginView(ctx.pageOf(details), name, shown.status, shown.error, email));
    }
    if (result.deviceCookie) reply.header('set-cookie', deviceCookieHeader(result.deviceCookie, ctx.deps.secureCookies));
    if (result.answer) return steps.completeLogin(request, reply, details, result.answer);
    // A further step is pending: its page is the interaction's page now.
    return ctx.seeOther(reply, details);
  });
}
