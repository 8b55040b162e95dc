/**
 * The login and consent interaction that oidc-provider redirects browsers to. Pages are server-rendered
 * and work without JavaScript; every form carries a CSRF token bound to the interaction; POSTs answer 303.
 *
 * After the password, the login service may ask for further steps (a second factor, a code for a new
 * device or network, enrolment of a factor when MFA is required). Their state lives server-side in the
 * login challenge bound to this interaction; the provider's `login` result is written only once every step
 * is done, so nothing that signs the browser in exists before.
 *
 * Layout: context.ts (loading and finishing the interaction, CSRF), steps.ts (the current step's page and
 * its errors), views.ts (the pages' view models and copy), and one route file per step: password.ts,
 * code-step.ts, passkey.ts (with passkey-views.ts), enrolment.ts, consent.ts, abort.ts.
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { abortRoutes } from './abort.js';
import { codeMethod, codeStepRoutes, methodId } from './code-step.js';
import { consentPage, consentRoutes } from './consent.js';
import { createInteractionContext, type InteractionRouteDeps } from './context.js';
import { enrolmentRoutes } from './enrolment.js';
import { passkeyRoutes } from './passkey.js';
import { PASSKEY_METHOD } from './passkey-views.js';
import { passwordRoutes } from './password.js';
import { createInteractionSteps } from './steps.js';
import { expiredView } from './views.js';
import { sendPage } from '../../views/page.js';

export type { InteractionRouteDeps } from './context.js';

/** What a step page may be asked for; anything else in the query is ignored, never an error. */
const stepQuery = z.object({
  method: z.union([methodId, z.literal(PASSKEY_METHOD)]).optional().catch(undefined),
  enroll: codeMethod.optional().catch(undefined),
  factor: z.uuid().optional().catch(undefined),
  sent: z.literal('1').optional().catch(undefined),
});

export async function interactionRoutes(app: FastifyInstance, deps: InteractionRouteDeps): Promise<void> {
  // Forms are tiny; anything larger is not a login.
  await app.register(formbody, { bodyLimit: 8 * 1024 });
  const ctx = createInteractionContext(deps);
  const steps = createInteractionSteps(ctx);

  // Failures the handlers do not render themselves (a body that is not a form, a service error) go to the
  // one error handler, which answers these page routes (`config.page`) with a page in plain words.
  app.get('/interaction/:uid', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.load(request, reply);
    if (!details) return reply;
    if (details.prompt.name === 'login') {
      const query = stepQuery.safeParse(request.query ?? {});
      const q = query.success ? query.data : {};
      return steps.stepPage(request, reply, details, { method: q.method, enroll: q.enroll, factorId: q.factor, sent: q.sent === '1' });
    }
    if (details.prompt.name === 'consent') return consentPage(ctx, reply, details);
    return sendPage(reply, expiredView());
  });

  passwordRoutes(app, ctx, steps);
  codeStepRoutes(app, ctx, steps);
  passkeyRoutes(app, ctx, steps);
  enrolmentRoutes(app, ctx, steps);
  consentRoutes(app, ctx);
  abortRoutes(app, ctx);
}
