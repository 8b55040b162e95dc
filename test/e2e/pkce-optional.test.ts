/**
 * PKCE opt-out: a confidential client registered with `require_pkce: false` may omit PKCE; a public client
 * can never opt out (registration refuses it, and the provider refuses it even if a row says otherwise).
 */
import t from 'tap';
import * as client from 'openid-client';
import { clients } from '../../src/db/schema/index.js';
import { createClientQueries } from '../../src/queries/clients.js';
import { bootstrapSchema } from '../../src/services/bootstrap.js';
import { authorizeThroughForms, discover, oauthError, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const ALICE = { email: 'alice@example.com', password: TEST_PASSWORD };

t.test('PKCE opt-out', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const user = await seedUser(server);
  const legacy = await seedClient(server, { require_pkce: false });
  const config = await discover(server, legacy);

  t.test('a confidential client with require_pkce:false completes the code flow without PKCE', async (t) => {
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid offline_access', state, prompt: 'consent' });
    t.equal(url.searchParams.get('code_challenge'), null, 'no code_challenge sent');
    const callback = await authorizeThroughForms(server, url, ALICE);
    t.ok(callback.searchParams.get('code'), 'a code was issued');
    const tokens = await client.authorizationCodeGrant(config, callback, { expectedState: state });
    t.equal(tokens.claims()?.sub, user.id);
    t.ok(tokens.refresh_token, 'refresh token');
  });

  t.test('a code issued without a challenge is refused when a code_verifier is sent anyway', async (t) => {
    const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid' });
    const callback = await authorizeThroughForms(server, url, ALICE);
    const err = await oauthError(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier() }));
    t.equal(err.error, 'invalid_grant');
  });

  t.test('the opted-out client may still use PKCE, and then it is enforced', async (t) => {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const callback = await authorizeThroughForms(server, url, ALICE);
    const wrong = await oauthError(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier() }));
    t.equal(wrong.error, 'invalid_grant', 'a wrong verifier fails');
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    t.ok(tokens.access_token, 'the right verifier works');
  });

  t.test('a public client cannot be registered with require_pkce:false', async (t) => {
    await t.rejects(
      server.app.keryu.services.clients.createClient(
        { client_id: 'spa-no-pkce', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT_URI], require_pkce: false },
        { type: 'system' },
      ),
      { message: /public clients must use PKCE/ },
      'createClient refuses it',
    );
    t.throws(
      () => bootstrapSchema.parse({ clients: [{ client_id: 'spa-no-pkce', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT_URI], require_pkce: false }] }),
      'a bootstrap file declaring it is invalid',
    );
    t.equal(await createClientQueries(server.app.keryu.database.db).findClientById('spa-no-pkce'), undefined, 'nothing was stored');
  });

  t.test('a public client row with require_pkce:false written behind the service still needs PKCE', async (t) => {
    // Defence in depth: the provider's own metadata validator and PKCE policy refuse it too.
    await server.app.keryu.database.db.insert(clients).values({
      clientId: 'spa-forged',
      clientSecretDigest: null,
      metadata: {
        token_endpoint_auth_method: 'none',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        require_pkce: false,
      },
    });
    const res = await fetch(
      `${server.issuer}/auth?${new URLSearchParams({ client_id: 'spa-forged', redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid' }).toString()}`,
      { redirect: 'manual' },
    );
    t.equal(res.status, 400, 'the client does not load: its metadata is invalid');
    t.equal(res.headers.get('location'), null, 'no redirect, so no login and no code');
    t.match(await res.text(), 'Error: invalid_client');
  });
});
