/**
 * Consent: the page asking the user to allow the scopes the client is missing (shown by GET
 * /interaction/:uid when the provider's prompt is `consent`), and POST /interaction/:uid/confirm, which
 * grants them and records the consent.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Details, InteractionContext } from './context.js';
import { consentView, expiredView, refusedView } from './views.js';
import { sendPage } from '../../views/page.js';

interface MissingGrant {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

export async function consentPage(ctx: InteractionContext, reply: FastifyReply, details: Details): Promise<FastifyReply> {
  const clientId = String(details.params.client_id ?? '');
  const client = await ctx.deps.host.provider.Client.find(clientId);
  const missing = details.prompt.details as MissingGrant;
  const shown = { name: client?.clientName ?? clientId, logoUri: client?.logoUri, policyUri: client?.policyUri, tosUri: client?.tosUri };
  return sendPage(reply, consentView(ctx.pageOf(details), shown, missing.missingOIDCScope ?? [], missing.missingResourceScopes ?? {}));
}

export function consentRoutes(app: FastifyInstance, ctx: InteractionContext): void {
  app.post('/interaction/:uid/confirm', { config: { page: true } }, async (request, reply) => {
    const details = await ctx.loadForm(request, reply);
    if (!details) return reply;
    if (details.prompt.name !== 'consent' || !details.session) return sendPage(reply, refusedView());
    const provider = ctx.deps.host.provider;
    const missing = details.prompt.details as MissingGrant;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: String(details.params.client_id) });
    if (!grant) return sendPage(reply, expiredView());
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await ctx.deps.audit.record({
      type: 'consent',
      outcome: 'success',
      actor: { type: 'user', id: details.session.accountId },
      subject: { type: 'user', id: details.session.accountId },
      clientId: String(details.params.client_id),
      context: request.requestContext,
      details: { scopes: missing.missingOIDCScope ?? [], resources: Object.keys(missing.missingResourceScopes ?? {}) },
    });
    return ctx.finish(request, reply, { consent: { grantId } }, true);
  });
}
