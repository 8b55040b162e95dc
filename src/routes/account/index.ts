/**
 * The account pages under /account/: a signed-in person sees and controls their own account. Pages are
 * server-rendered, work without JavaScript, answer POSTs with 303, and call the same services as the JSON
 * API (no rule is implemented twice).
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import type { AccountRelyingParty } from '../../services/account/relying-party.js';
import type { AccountSessions } from '../../services/account/session.js';
import type { FormCsrf } from '../../views/csrf.js';
import { accountActivityRoutes, type ActivityDeps } from './activity.js';
import { createAccountContext } from './context.js';
import { accountOverviewRoutes, type OverviewDeps } from './overview.js';
import { accountSignInRoutes } from './sign-in.js';

export interface AccountRouteDeps extends Omit<OverviewDeps, 'context'>, Omit<ActivityDeps, 'context'> {
  relyingParty: AccountRelyingParty;
  sessions: AccountSessions;
  csrf: FormCsrf;
  secureCookies: boolean;
}

export async function accountRoutes(app: FastifyInstance, deps: AccountRouteDeps): Promise<void> {
  // Forms are small; anything larger is not one of ours.
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  const context = createAccountContext({ sessions: deps.sessions, csrf: deps.csrf, secureCookies: deps.secureCookies });
  await accountSignInRoutes(app, { relyingParty: deps.relyingParty, sessions: deps.sessions, context });
  await accountOverviewRoutes(app, { context, users: deps.users, factors: deps.factors, devices: deps.devices });
  await accountActivityRoutes(app, { context, activity: deps.activity, notices: deps.notices, clock: deps.clock });
}
