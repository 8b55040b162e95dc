/**
 * A role's `mfa_required` holds on the management API too (issue 9 L1), not only at sign-in: a user holding such a
 * role may use a permission only with a session or token whose sign-in used a second factor (`amr` has `mfa`).
 * Sessions, personal tokens and OIDC access tokens from a sign-in without one answer 403 `mfa_required`; service
 * accounts are not users and are exempt.
 */
import * as client from 'openid-client';
import t from 'tap';
import { api, login, manualClock, NO_RATE_LIMITS, type Pair } from '../helpers/auth.js';
import { enrolTotpFor, verify } from '../helpers/mfa.js';
import { discover, loginWithCode, seedClient, seedUser } from '../helpers/oidc.js';
import { apiClient, assignRoles, serviceAccount } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

t.test('permissions of an mfa_required role need a sign-in with a second factor', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, ACCESS_TOKEN_TTL: '3600' }, clock });
  t.teardown(() => server.close());
  const root = await serviceAccount(server, ['admin']);
  const role = await root.api<{ id: string }>('POST', '/api/auth/roles/', { name: 'user-admins', permissions: ['auth.users.manage'], mfa_required: false });
  t.equal(role.status, 201);
  const alice = await seedUser(server, 'alice@example.com');
  await assignRoles(server, alice.id, ['user-admins']);

  // Signed in with a password only, while the role did not require more.
  const session = await login(server);
  const pat = (await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: session.access_token, body: { name: 'ci', scopes: ['auth.users.manage'] } })).body.token;
  const firstParty = await seedClient(server, { first_party: true });
  const { tokens } = await loginWithCode(server, await discover(server, firstParty), { scope: 'openid offline_access auth.users.manage', resource: server.config.apiAudience });
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString()) as { amr?: string[] };
  t.same(claims.amr, ['pwd'], 'the API token says how the user signed in');
  const oidc = apiClient(server.origin, tokens.access_token);
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: session.access_token })).status, 200, 'session: allowed while the role does not require MFA');
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: pat })).status, 200, 'personal token: allowed');
  t.equal((await oidc('GET', '/api/auth/users/')).status, 200, 'OIDC token: allowed');

  const updated = await root.api('PUT', `/api/auth/roles/${role.body.id}/`, { name: 'user-admins', permissions: ['auth.users.manage'], mfa_required: true });
  t.equal(updated.status, 200);
  for (const [what, call] of [
    ['a session', () => api(server, 'GET', '/api/auth/users/', { token: session.access_token })],
    ['a personal token', () => api(server, 'GET', '/api/auth/users/', { token: pat })],
    ['an OIDC access token', () => oidc('GET', '/api/auth/users/')],
  ] as const) {
    const res = await call();
    t.match(res, { status: 403, body: { error: 'mfa_required', required: 'auth.users.manage' } }, `${what} from a password-only sign-in is refused`);
  }
  const refreshed = await client.refreshTokenGrant(await discover(server, firstParty), tokens.refresh_token!);
  t.equal((await apiClient(server.origin, refreshed.access_token)('GET', '/api/auth/users/')).status, 403, 'a refresh proves no second factor');

  // Signing in again with the second factor restores access.
  const totp = await enrolTotpFor(server, alice, clock);
  const challenge = await api<{ challenge_id: string; methods: string[] }>(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD } });
  t.ok(challenge.body.challenge_id, 'the sign-in asks for the second factor');
  const passed = await verify(server, { challenge_id: challenge.body.challenge_id, method: 'totp', code: await totp() });
  t.equal(passed.status, 200);
  const strong = passed.body as Pair;
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: strong.access_token })).status, 200, 'a session signed in with MFA');
  const strongPat = (await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: strong.access_token, body: { name: 'ci2', scopes: ['auth.users.manage'] } })).body.token;
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: strongPat })).status, 200, 'and a personal token it created');
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: pat })).status, 403, 'the older personal token stays refused');
});

t.test('service accounts holding an mfa_required role are exempt', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const root = await serviceAccount(server, ['admin']);
  t.equal((await root.api('POST', '/api/auth/roles/', { name: 'strict-admins', permissions: ['auth.users.manage'], mfa_required: true })).status, 201);
  const machine = await serviceAccount(server, ['strict-admins']);
  t.equal((await machine.api('GET', '/api/auth/users/')).status, 200);
});
