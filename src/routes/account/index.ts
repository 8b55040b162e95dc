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
import { accountSessionsRoutes, type SessionsDeps } from './sessions.js';
import { accountSignInRoutes } from './sign-in.js';
import { createSealedFormValues } from './sealed-form-value.js';
import { accountSecurityRoutes, type SecurityDeps } from './security.js';
import { accountSecurityFactorRoutes, type SecurityFactorDeps } from './security-factors.js';
import { accountSecurityPasskeyRoutes, type SecurityPasskeyDeps } from './security-passkeys.js';
import type { Clock } from '../../lib/clock.js';
import { accountTokenRoutes, type TokenPageDeps } from './tokens.js';
import { accountApplicationRoutes, type ApplicationPageDeps } from './applications.js';

export interface AccountRouteDeps extends Omit<OverviewDeps, 'context'>, Omit<SessionsDeps, 'context' | 'devices'>, Omit<ActivityDeps, 'context'> {
  devices: OverviewDeps['devices'] & SessionsDeps['devices'];
  tokens: Omit<TokenPageDeps, 'context'>;
  applications: ApplicationPageDeps['applications'];
  relyingParty: AccountRelyingParty;
  sessions: AccountSessions;
  csrf: FormCsrf;
  secureCookies: boolean;
  /** Security settings: the factors' and password services, the policy's minimum length, the key of sealed form values. */
  security: Omit<SecurityDeps, 'context' | 'factors'> & {
    factors: SecurityDeps['factors'] & SecurityFactorDeps['factors'] & SecurityPasskeyDeps['factors'];
    passkeys: SecurityPasskeyDeps['passkeys'];
    sealKey: Buffer;
    clock: Clock;
  };
}

export async function accountRoutes(app: FastifyInstance, deps: AccountRouteDeps): Promise<void> {
  // Forms are small; anything larger is not one of ours.
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  const context = createAccountContext({ sessions: deps.sessions, csrf: deps.csrf, secureCookies: deps.secureCookies });
  await accountSignInRoutes(app, { relyingParty: deps.relyingParty, sessions: deps.sessions, context });
  await accountOverviewRoutes(app, { context, users: deps.users, factors: deps.factors, devices: deps.devices });
  await accountSecurityRoutes(app, { context, factors: deps.security.factors, passwords: deps.security.passwords, passwordMinLength: deps.security.passwordMinLength });
  await accountSecurityFactorRoutes(app, { context, factors: deps.security.factors, sealed: createSealedFormValues({ key: deps.security.sealKey, clock: deps.security.clock }) });
  await accountSecurityPasskeyRoutes(app, { context, passkeys: deps.security.passkeys, factors: deps.security.factors });
  await accountTokenRoutes(app, { context, ...deps.tokens });
  await accountApplicationRoutes(app, { context, applications: deps.applications });
  await accountSessionsRoutes(app, { context, signIns: deps.signIns, devices: deps.devices });
  await accountActivityRoutes(app, { context, activity: deps.activity, notices: deps.notices, clock: deps.clock });
}
