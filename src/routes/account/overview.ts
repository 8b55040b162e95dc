/**
 * The account overview: who you are (name editable), and your security at a glance: factors, trusted
 * devices, and links to where each is managed.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { FactorService } from '../../services/mfa/factors.js';
import type { createTrustedDeviceService } from '../../services/mfa/devices.js';
import type { UserService } from '../../services/users.js';
import { seeOther } from '../../views/page.js';
import type { AccountContext } from './context.js';

const nameForm = z.object({ csrf: z.string().max(100), name: z.string().max(200) });
const savedQuery = z.object({ saved: z.literal('1').optional().catch(undefined) });

export interface OverviewDeps {
  context: AccountContext;
  users: Pick<UserService, 'updateOwnName'>;
  factors: Pick<FactorService, 'list'>;
  devices: Pick<ReturnType<typeof createTrustedDeviceService>, 'list'>;
}

export async function accountOverviewRoutes(app: FastifyInstance, deps: OverviewDeps): Promise<void> {
  const { context } = deps;

  app.get('/account/', { config: { page: true }, preHandler: context.requireSession }, async (request, reply) => {
    const session = request.account!;
    const [factors, devices] = await Promise.all([deps.factors.list(session.user.id), deps.devices.list(session.user.id)]);
    return context.send(reply, session, 200, 'overview', {
      title: 'Overview',
      current: '/account/',
      profile: { name: session.user.name ?? '', email: session.user.email, phone: session.user.phone },
      saved: savedQuery.parse(request.query).saved === '1',
      factors: factors.filter((f) => f.active).map((f) => f.label),
      trustedDevices: devices.length,
    });
  });

  app.post('/account/profile', { config: { page: true }, preHandler: context.requireSession }, async (request, reply) => {
    const session = request.account!;
    const form = nameForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await deps.users.updateOwnName(session.user, form.data.name, request.requestContext);
    return seeOther(reply, '/account/?saved=1');
  });
}
