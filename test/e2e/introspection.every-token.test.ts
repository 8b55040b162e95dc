/**
 * One introspection endpoint (RFC 7662), the one discovery names, for every token the product issues:
 * opaque provider tokens, provider JWT access tokens (service account and user), first-party access tokens
 * and personal tokens. Each is introspected through openid-client (discovery only) before and after its
 * revocation, and at a second replica (another process on the same database), which must agree at once.
 * An inactive answer says nothing else.
 */
import * as client from 'openid-client';
import t, { type Test } from 'tap';
import { bootstrapSchema } from '../../src/services/bootstrap.js';
import { api, login, NO_RATE_LIMITS, seedAuthUser, type Pair } from '../helpers/auth.js';
import { onPostgres } from '../helpers/db.js';
import { discover, loginWithCode, seedClient } from '../helpers/oidc.js';
import { startServerProcess } from '../helpers/process.js';
import { endpoint, introspect as introspectAt, jwtPayload } from '../helpers/replicas.js';
import { startServer } from '../helpers/server.js';

const SKIP = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL)';
const ORDERS = 'https://orders.example.com';

t.test('the discovered introspection endpoint answers for every token kind, on every replica', { skip: SKIP }, async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const replicaB = await startServerProcess({ databaseUrl: server.db.url!, issuer: server.issuer, env: NO_RATE_LIMITS });
  t.teardown(() => replicaB.stop());
  const b = replicaB;
  await server.app.keryu.services.bootstrap.applyBootstrap(
    bootstrapSchema.parse({ resource_servers: [{ identifier: ORDERS, scope: 'orders', access_token_format: 'jwt' }] }),
    { type: 'system' },
    'test',
  );
  await seedAuthUser(server);

  // The relying service that introspects: a confidential client, configured from discovery only.
  const service = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  const serviceCreds = { clientId: service.clientId, clientSecret: service.clientSecret! };
  const rs = await discover(server, service);
  t.ok(rs.serverMetadata().introspection_endpoint, 'discovery names the introspection endpoint');

  /** Introspects at replica A (openid-client) and at replica B (its own origin); both must agree. */
  async function both(token: string) {
    const atA = (await client.tokenIntrospection(rs, token)) as Record<string, unknown>;
    const atB = await introspectAt(b, serviceCreds, token);
    return { atA, atB };
  }
  async function assertInactive(t: Test, token: string, what: string) {
    const { atA, atB } = await both(token);
    t.same(atA, { active: false }, `${what}: inactive, and nothing else said`);
    t.same(atB, { active: false }, `${what}: inactive at the second replica too`);
  }

  t.test('opaque provider access token', async (t) => {
    const web = await seedClient(server);
    const webConfig = await discover(server, web);
    const { tokens } = await loginWithCode(server, webConfig);
    const { atA, atB } = await both(tokens.access_token);
    t.match(atA, { active: true, client_id: web.clientId, token_type: 'Bearer', iss: server.issuer });
    t.equal(atB.active, true, 'active at the second replica');
    const userinfoAtB = () => fetch(endpoint(b, '/me'), { headers: { authorization: `Bearer ${tokens.access_token}` } }).then((r) => r.status);
    t.equal(await userinfoAtB(), 200, 'userinfo at the second replica accepts it');
    await client.tokenRevocation(webConfig, tokens.access_token);
    await assertInactive(t, tokens.access_token, 'after revocation');
    t.equal(await userinfoAtB(), 401, 'userinfo at the second replica refuses it');
  });

  t.test('provider JWT access token of a service account', async (t) => {
    const machine = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
    const machineConfig = await discover(server, machine);
    const { access_token: jwt } = await client.clientCredentialsGrant(machineConfig, { resource: ORDERS, scope: 'orders' });
    t.equal(jwt.split('.').length, 3, 'a JWT');
    const { atA, atB } = await both(jwt);
    const claims = jwtPayload(jwt);
    t.match(atA, { active: true, client_id: machine.clientId, sub: machine.clientId, aud: ORDERS, iss: server.issuer, token_type: 'Bearer', exp: claims.exp, iat: claims.iat, scope: 'orders' });
    t.same(atB, atA, 'the second replica answers the same');

    await client.tokenRevocation(machineConfig, jwt);
    await assertInactive(t, jwt, 'after the JWT itself was revoked');
  });

  t.test('provider JWT access token of a user, inactive once its grant is revoked', async (t) => {
    const web = await seedClient(server);
    const webConfig = await discover(server, web);
    const { tokens } = await loginWithCode(server, webConfig, { resource: ORDERS, scope: 'openid offline_access orders' });
    const jwt = tokens.access_token;
    t.equal(jwt.split('.').length, 3, 'a JWT for the resource server');
    const { atA, atB } = await both(jwt);
    t.match(atA, { active: true, client_id: web.clientId, aud: ORDERS, token_type: 'Bearer', scope: 'orders' });
    t.type(atA.sub, 'string', 'the user is named');
    t.notOk('grant_id' in atA, 'the grant reference is not released');
    t.equal(atB.active, true);

    // Revoking the refresh token revokes its grant (oidc-provider), and with it every token of the grant.
    t.ok(tokens.refresh_token, 'a refresh token');
    await client.tokenRevocation(webConfig, tokens.refresh_token!);
    await assertInactive(t, jwt, 'after its grant was revoked');
  });

  t.test('first-party access token, inactive as soon as its session ends', async (t) => {
    const pair: Pair = await login(server);
    const { atA, atB } = await both(pair.access_token);
    t.match(atA, { active: true, client_id: 'urn:keryu:first-party', sid: pair.session_id, token_type: 'Bearer', iss: server.issuer });
    t.equal(atB.active, true);

    // RFC 7009 at the discovered endpoint ends the token's session.
    await client.tokenRevocation(rs, pair.access_token);
    await assertInactive(t, pair.access_token, 'after revocation');
    const refresh = await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token } });
    t.equal(refresh.status, 401, 'the session is over: its refresh token is refused');
  });

  t.test('personal token', async (t) => {
    const pair = await login(server);
    const created = await api<{ id: string; token: string }>(server, 'POST', '/api/auth/tokens/', { token: pair.access_token, body: { name: 'ci' } });
    t.equal(created.status, 201, JSON.stringify(created.body));
    const pat = created.body.token;
    const { atA, atB } = await both(pat);
    t.match(atA, { active: true, token_type: 'Bearer', client_id: 'urn:keryu:first-party' });
    t.equal(atB.active, true);

    t.equal((await api(server, 'DELETE', `/api/auth/tokens/${created.body.id}/`, { token: pair.access_token })).status, 204);
    await assertInactive(t, pat, 'after revocation');

    // RFC 7009 at the discovered endpoint ends a personal token too.
    const second = await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: pair.access_token, body: { name: 'ci 2' } });
    t.equal(second.status, 201);
    t.equal((await both(second.body.token)).atA.active, true);
    await client.tokenRevocation(rs, second.body.token);
    await assertInactive(t, second.body.token, 'after revocation at the revocation endpoint');
    const listed = await api<{ items: Array<{ name: string; is_active: boolean }> }>(server, 'GET', '/api/auth/tokens/', { token: pair.access_token });
    t.equal(listed.body.items.find((i) => i.name === 'ci 2')?.is_active, false, 'listed as revoked');
  });

  t.test('the older path is an alias of the same endpoint, with the same client authentication', async (t) => {
    const { access_token: jwt } = await client.clientCredentialsGrant(rs, { resource: ORDERS });
    const alias = (authorization: string) =>
      fetch(`${server.origin}/api/auth/introspect/`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token: jwt }).toString(),
      });
    const basic = (secret: string) => `Basic ${Buffer.from(`${service.clientId}:${secret}`).toString('base64')}`;
    const ok = await alias(basic(service.clientSecret!));
    t.equal(ok.status, 200);
    t.same(await ok.json(), await client.tokenIntrospection(rs, jwt), 'the same answer as the discovered endpoint');
    const wrong = await alias(basic('x'.repeat(43)));
    t.equal(wrong.status, 401);
    const refused = (await wrong.json()) as Record<string, unknown>;
    t.equal(refused.error, 'invalid_client');
    t.same(Object.keys(refused).sort(), ['error', 'error_description'], 'an OAuth error (RFC 7662 §2.3 → RFC 6749 §5.2), not {error, message}');
    t.match(wrong.headers.get('www-authenticate') ?? '', /^Basic /, 'with a challenge in the scheme the client used');
  });

  t.test('what is not a live token of ours is inactive, and nothing else is said', async (t) => {
    const { access_token: jwt } = await client.clientCredentialsGrant(rs, { resource: ORDERS });
    const [header, payload, signature] = jwt.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, scope: 'orders admin' })).toString('base64url')}.${signature}`;
    t.same(await client.tokenIntrospection(rs, forged), { active: false }, 'a JWT whose claims were changed');
    const web = await seedClient(server);
    const { tokens } = await loginWithCode(server, await discover(server, web), { scope: 'openid' });
    t.same(await client.tokenIntrospection(rs, tokens.id_token!), { active: false }, 'an ID token (signed by us, not an access token)');
    t.same(await client.tokenIntrospection(rs, 'a.b.c'), { active: false }, 'something shaped like a JWT');
    t.same(await client.tokenIntrospection(rs, 'kpat_nothing'), { active: false }, 'an unknown personal token');
    t.same(await client.tokenIntrospection(rs, jwt, { token_type_hint: 'refresh_token' }), await client.tokenIntrospection(rs, jwt), 'a wrong hint changes nothing');
  });

  t.test('a public client introspects only its own tokens', async (t) => {
    const machine = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
    const { access_token: jwt } = await client.clientCredentialsGrant(await discover(server, machine), { resource: ORDERS });
    const spa = await seedClient(server, { token_endpoint_auth_method: 'none' });
    const spaConfig = await discover(server, spa);
    t.same(await client.tokenIntrospection(spaConfig, jwt), { active: false }, 'another client’s JWT');
    t.same(await client.tokenIntrospection(spaConfig, (await login(server)).access_token), { active: false }, 'a first-party token');
  });
});
