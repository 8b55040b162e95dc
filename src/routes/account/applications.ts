/**
 * The applications a person has granted access to (OIDC clients holding a grant: the scopes granted, when,
 * last used), and "remove access" through a confirmation page, which revokes the client's grants and with
 * them its tokens (services/account/applications.ts).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AccountApplications, GrantedApplication } from '../../services/account/applications.js';
import { describeScope } from '../../services/api-scopes.js';
import { seeOther } from '../../views/page.js';
import type { AccountContext } from './context.js';
import { dateView } from '../../views/date.js';

export interface ApplicationPageDeps {
  context: AccountContext;
  applications: AccountApplications;
}

const clientField = z.string().min(1).max(200);
const listQuery = z.object({ removed: z.literal('1').optional().catch(undefined) });
const confirmQuery = z.object({ client: clientField });
const removeForm = z.object({ csrf: z.string().max(100), client: clientField });

function applicationModel(app: GrantedApplication) {
  return {
    clientId: app.clientId,
    name: app.name,
    scopes: app.scopes.map((scope) => ({ scope, words: describeScope(scope) })),
    resources: app.resources.map((r) => ({ resource: r.resource, scopes: r.scopes.map((scope) => ({ scope, words: describeScope(scope) })) })),
    granted: dateView(app.grantedAt),
    lastUsed: dateView(app.lastUsedAt),
    removeHref: `/account/applications/remove?${new URLSearchParams({ client: app.clientId }).toString()}`,
  };
}

export async function accountApplicationRoutes(app: FastifyInstance, deps: ApplicationPageDeps): Promise<void> {
  const { context, applications } = deps;
  const signedIn = { config: { page: true }, preHandler: context.requireSession };

  app.get('/account/applications', signedIn, async (request, reply) => {
    const session = request.account!;
    const list = await applications.listApplications(session.userId);
    return context.send(reply, session, 200, 'applications', {
      title: 'Applications',
      current: '/account/applications',
      removed: listQuery.parse(request.query).removed === '1',
      applications: list.map(applicationModel),
    });
  });

  app.get('/account/applications/remove', signedIn, async (request, reply) => {
    const session = request.account!;
    const { client } = confirmQuery.parse(request.query);
    const found = await applications.findApplication(session.userId, client);
    return context.send(reply, session, 200, 'application-remove', { title: `Remove access of ${found.name}`, current: '/account/applications', application: applicationModel(found) });
  });

  app.post('/account/applications/remove', signedIn, async (request, reply) => {
    const session = request.account!;
    const form = removeForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await applications.removeApplication(session.userId, form.data.client, request.requestContext);
    return seeOther(reply, '/account/applications?removed=1');
  });
}
