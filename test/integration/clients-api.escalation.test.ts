/**
 * No escalation through clients: a delegated admin holding auth.clients.manage cannot give a client a role
 * holding more than she does, nor take over a service account holding more (rotate its secret, change its
 * authentication, delete it, strip its roles). Refusals are 403, change nothing, and are audited.
 */
import * as client from 'openid-client';
import t from 'tap';
import { NO_RATE_LIMITS } from '../helpers/auth.js';
import { auditLog } from '../helpers/mfa.js';
import { discover } from '../helpers/oidc.js';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

const machine = { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' };

t.test('a delegated client admin cannot escalate through a client', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const root = await serviceAccount(server, ['admin']);
  for (const codename of ['documents.read', 'billing.refund']) await root.api('POST', '/api/auth/permissions/', { name: codename, codename });
  await root.api('POST', '/api/auth/roles/', { name: 'reader', permissions: ['documents.read'], level: 5 });
  await root.api('POST', '/api/auth/roles/', { name: 'finance', permissions: ['billing.refund'], level: 5 });
  await root.api('POST', '/api/auth/roles/', { name: 'high-reader', permissions: ['documents.read'], level: 90 });
  await root.api('POST', '/api/auth/roles/', { name: 'client-admin', permissions: ['auth.clients.manage', 'documents.read'], level: 10 });
  const carol = await userWithToken(server, 'carol@example.com', ['client-admin']);

  // Her own clients, with roles within what she holds.
  const own = await carol.api('POST', '/api/auth/clients/', { client_id: 'carol-bot', ...machine });
  t.equal(own.status, 201, 'she registers a client');
  t.equal((await carol.api('POST', '/api/auth/clients/carol-bot/roles/', { role: 'reader' })).status, 201, 'a role within her permissions: fine');
  t.equal((await carol.api('POST', '/api/auth/clients/carol-bot/roles/', { role: 'reader' })).status, 200, 'again: already held');

  for (const role of ['finance', 'admin', 'high-reader']) {
    const res = await carol.api('POST', '/api/auth/clients/carol-bot/roles/', { role });
    t.equal(res.status, 403, `she cannot give a client ${role}`);
    t.equal(res.body.error, 'forbidden');
  }
  t.same(
    (await carol.api('GET', '/api/auth/clients/carol-bot/roles/')).body.items.map((r: { role: string }) => r.role),
    ['reader'],
    'the client holds only what she could give',
  );

  // A service account holding more than she does: she may look, not take it over.
  const bot = await root.api('POST', '/api/auth/clients/', { client_id: 'finance-bot', ...machine });
  await root.api('POST', '/api/auth/clients/finance-bot/roles/', { role: 'finance' });
  const financeRole = (await root.api('GET', '/api/auth/clients/finance-bot/roles/')).body.items[0];
  t.equal((await carol.api('GET', '/api/auth/clients/finance-bot/')).status, 200, 'she can read it');
  t.equal((await carol.api('POST', '/api/auth/clients/finance-bot/secret/')).status, 403, 'she cannot rotate its secret (and learn the new one)');
  t.equal(
    (await carol.api('PUT', '/api/auth/clients/finance-bot/', { ...machine, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] } })).status,
    403,
    'she cannot switch it to a key of hers',
  );
  t.equal((await carol.api('DELETE', `/api/auth/clients/finance-bot/roles/${financeRole.role_id}/`)).status, 403, 'nor strip its role');
  t.equal((await carol.api('DELETE', '/api/auth/clients/finance-bot/')).status, 403, 'nor delete it');

  const after = await root.api('GET', '/api/auth/clients/finance-bot/');
  t.equal(after.status, 200, 'still there');
  t.equal(after.body.token_endpoint_auth_method, 'client_secret_basic', 'unchanged');
  t.equal(after.body.previous_secret_expires_at, null, 'never rotated');
  t.ok(await client.clientCredentialsGrant(await discover(server, { clientId: 'finance-bot', clientSecret: bot.body.client_secret })), 'its secret still works');

  const failures = (await auditLog(server)).filter((e) => e.outcome === 'failure' && e.actorId === carol.user.id && e.type !== 'access.denied');
  t.same(
    failures.map((e) => `${e.type}:${e.subjectId}`).sort(),
    [
      'client.deleted:finance-bot',
      'client.secret_rotated:finance-bot',
      'client.updated:finance-bot',
      'role.assigned:carol-bot',
      'role.assigned:carol-bot',
      'role.assigned:carol-bot',
      'role.unassigned:finance-bot',
    ],
    'every refusal is audited',
  );
});
