/**
 * Confused deputy (issue 9 H1): only clients the operator allowed may obtain tokens for keryu-auth's own API
 * (`<issuer origin>/api`): user tokens go to clients marked `first_party`, client-credentials tokens to service
 * accounts (clients holding roles). A third-party relying party that adds `resource=<origin>/api` while an
 * administrator signs in gets `invalid_target`, at the authorization endpoint, the token endpoint and on
 * refresh. A token with some API scopes cannot use permissions its scopes do not name, even when its user
 * holds them, nor hand them out.
 */
import * as client from 'openid-client';
import t from 'tap';
import { API_SCOPES } from '../../src/services/api-scopes.js';
import { authorizationRequest, authorizeThroughForms, Browser, discover, hiddenField, loginWithCode, oauthError, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { apiClient, assignRoles, serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

t.test('the API resource goes only to first-party clients and service accounts, within their scopes', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const API = server.config.apiAudience;
  const admin = await seedUser(server, 'admin@example.com');
  await assignRoles(server, admin.id, ['admin']);
  const allScopes = ['openid', 'offline_access', ...API_SCOPES].join(' ');

  t.test('a third-party client asking for the API in its authorization request gets invalid_target', async (t) => {
    const rp = await seedClient(server);
    const config = await discover(server, rp);
    const { url } = await authorizationRequest(config, { resource: API, scope: allScopes, prompt: 'consent' });
    const callback = await authorizeThroughForms(server, url, { email: 'admin@example.com', password: TEST_PASSWORD });
    t.equal(callback.origin + callback.pathname, REDIRECT_URI);
    t.equal(callback.searchParams.get('error'), 'invalid_target', 'refused before any sign-in or consent');
    t.notOk(callback.searchParams.get('code'), 'no code');
  });

  t.test('nor at the token endpoint, with a code or a refresh token (offline_access)', async (t) => {
    const rp = await seedClient(server);
    const config = await discover(server, rp);
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      prompt: 'consent',
    });
    const callback = await authorizeThroughForms(server, url, { email: 'admin@example.com', password: TEST_PASSWORD });
    const failure = await oauthError(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier }, { resource: API }));
    t.equal(failure.error, 'invalid_target', 'the code exchange refuses the API resource');

    const { tokens } = await loginWithCode(server, config, { email: 'admin@example.com', scope: 'openid offline_access' });
    const refresh = await oauthError(client.refreshTokenGrant(config, tokens.refresh_token!, { resource: API }));
    t.equal(refresh.error, 'invalid_target', 'a refresh asking for the API is refused');
    t.equal((await apiClient(server.origin, tokens.access_token)('GET', '/api/auth/users/')).status, 401, 'its ordinary token does not reach the API');
  });

  t.test('a grant made while the client was first-party stops yielding API tokens once the mark is removed', async (t) => {
    const seeded = await seedClient(server, { first_party: true });
    const config = await discover(server, seeded);
    const { tokens } = await loginWithCode(server, config, { email: 'admin@example.com', scope: allScopes, resource: API });
    t.equal((await apiClient(server.origin, tokens.access_token)('GET', '/api/auth/users/')).status, 200, 'first-party: works');
    const declared = await server.app.keryu.services.clients.validateDeclaredClient({
      client_id: seeded.clientId,
      client_secret: seeded.clientSecret,
      redirect_uris: [REDIRECT_URI],
      post_logout_redirect_uris: ['http://127.0.0.1:9/'],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid profile email offline_access',
    });
    t.equal(await server.app.keryu.services.clients.applyClient(declared, { type: 'system' }), 'updated');
    const refresh = await oauthError(client.refreshTokenGrant(config, tokens.refresh_token!));
    t.equal(refresh.error, 'invalid_target', 'the refresh (offline_access) no longer yields an API token');
  });

  t.test('nor through the device flow', async (t) => {
    const tv = await seedClient(server, { grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], redirect_uris: [], post_logout_redirect_uris: [] });
    const failure = await oauthError(client.initiateDeviceAuthorization(await discover(server, tv), { scope: allScopes, resource: API }));
    t.equal(failure.error, 'invalid_target');
  });

  t.test('first_party is a boolean the operator sets', async (t) => {
    await t.rejects(seedClient(server, { first_party: 'yes' }), /first_party/, 'not a string');
  });

  t.test('a client without roles gets no API token by client credentials', async (t) => {
    const machine = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
    const failure = await oauthError(client.clientCredentialsGrant(await discover(server, machine), { resource: API }));
    t.equal(failure.error, 'invalid_target');
  });

  t.test('the consent page names the API scopes in plain words', async (t) => {
    const seeded = await seedClient(server, { first_party: true });
    const config = await discover(server, seeded);
    const { url } = await authorizationRequest(config, { resource: API, scope: 'openid auth.users.manage', prompt: 'consent' });
    const browser = new Browser();
    let res = await browser.fetch(url);
    let location = new URL(res.headers.get('location')!, url);
    res = await browser.fetch(location);
    const uid = location.pathname.split('/').pop()!;
    res = await browser.postForm(`${server.origin}/interaction/${uid}/login`, { csrf: hiddenField(await res.text(), 'csrf'), email: 'admin@example.com', password: TEST_PASSWORD });
    location = new URL(res.headers.get('location')!, url);
    for (let i = 0; i < 5 && !location.pathname.startsWith('/interaction/'); i++) {
      res = await browser.fetch(location);
      location = new URL(res.headers.get('location')!, location);
    }
    const page = await (await browser.fetch(location)).text();
    t.match(page, 'Allow access?');
    t.match(page, 'Act as you in keryu-auth: manage users', 'the API scope in words');
    t.match(page, 'Sign you in');
    t.notMatch(page, 'auth.users.manage', 'not the bare scope name');
  });

  t.test('a token with some scopes may use only those, although its user holds everything', async (t) => {
    const other = await seedUser(server, 'bob@example.com');
    const seeded = await seedClient(server, { first_party: true });
    const config = await discover(server, seeded);
    const { tokens } = await loginWithCode(server, config, { email: 'admin@example.com', scope: 'openid offline_access auth.users.manage', resource: API });
    t.equal(tokens.scope?.split(' ').includes('auth.users.manage'), true);
    const api = apiClient(server.origin, tokens.access_token);
    t.equal((await api('GET', '/api/auth/users/')).status, 200, 'the scope it carries');
    const roles = await api('GET', '/api/auth/roles/');
    t.equal(roles.status, 403, 'another permission the admin holds');
    t.equal(roles.body.error, 'insufficient_scope');
    t.equal(roles.body.required, 'auth.roles.manage');
    t.match(roles.headers.get('www-authenticate'), /error="insufficient_scope"/, 'RFC 6750 §3.1 challenge');
    t.equal((await api('POST', `/api/auth/users/${other.id}/roles/`, { role: 'admin' })).status, 403, 'cannot assign roles');

    // A refreshed token keeps only the granted scopes.
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    t.equal((await apiClient(server.origin, refreshed.access_token)('GET', '/api/auth/roles/')).status, 403, 'nor after a refresh');
  });

  t.test('a superuser token scoped to roles cannot make anyone a superuser', async (t) => {
    const carol = await seedUser(server, 'carol@example.com');
    const scoped = await userWithToken(server, 'root2@example.com', ['admin'], { scopes: ['auth.roles.manage'] });
    const res = await scoped.api('POST', `/api/auth/users/${carol.id}/roles/`, { role: 'admin' });
    t.equal(res.status, 403, 'the token is not a superuser token');
    t.equal(res.body.required, 'auth.superuser');
    t.equal((await scoped.api('GET', '/api/auth/roles/')).status, 200, 'what the scope names works');
  });

  t.test('a service account gets the scopes its roles allow, and no more', async (t) => {
    const root = await serviceAccount(server, ['admin']);
    await root.api('POST', '/api/auth/roles/', { name: 'user-reader', permissions: ['auth.users.manage'] });
    const limited = await serviceAccount(server, ['user-reader']);
    const claims = JSON.parse(Buffer.from(limited.token.split('.')[1]!, 'base64url').toString()) as { scope?: string };
    t.equal(claims.scope, 'auth.users.manage', 'by default, the scopes of its roles');
    t.equal((await limited.api('GET', '/api/auth/users/')).status, 200);
    t.equal((await limited.api('GET', '/api/auth/roles/')).status, 403);
    const config = await discover(server, { clientId: limited.clientId, clientSecret: limited.clientSecret });
    const asked = await client.clientCredentialsGrant(config, { scope: 'auth.superuser auth.users.manage' });
    t.equal(asked.scope, 'auth.users.manage', 'asking for more than its roles allow gets only what they allow');
    const narrowed = await client.clientCredentialsGrant(config, { scope: 'auth.check' });
    t.equal(narrowed.scope, undefined, 'a scope its roles do not allow is not granted');

    const rootClaims = JSON.parse(Buffer.from(root.token.split('.')[1]!, 'base64url').toString()) as { scope?: string };
    t.same(rootClaims.scope?.split(' ').sort(), [...API_SCOPES].sort(), 'an admin service account: every API scope');
  });
});
