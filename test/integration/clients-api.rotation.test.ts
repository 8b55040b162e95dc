/**
 * Secret rotation (POST /api/auth/clients/{id}/secret/): the new secret is shown once; the replaced one keeps
 * working until CLIENT_SECRET_GRACE_PERIOD has passed (judged by the injectable clock), then is refused;
 * at most one previous secret; concurrent rotations leave no secret the callers were not shown.
 */
import * as client from 'openid-client';
import t from 'tap';
import { manualClock, NO_RATE_LIMITS } from '../helpers/auth.js';
import { auditLog } from '../helpers/mfa.js';
import { discover, oauthError } from '../helpers/oidc.js';
import { userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

const GRACE = 3600;
const machine = { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' };

t.test('secret rotation with a grace period', async (t) => {
  const clock = manualClock();
  const server = await startServer({ clock, env: { ...NO_RATE_LIMITS, CLIENT_SECRET_GRACE_PERIOD: String(GRACE) } });
  t.teardown(() => server.close());
  const { api } = await userWithToken(server, 'admin@example.com', ['admin']);
  const grant = async (clientId: string, secret: string) => {
    try {
      await client.clientCredentialsGrant(await discover(server, { clientId, clientSecret: secret }));
      return 'ok';
    } catch (err) {
      return (await oauthError(Promise.reject(err))).error;
    }
  };

  t.test('the old secret works during the grace period and is refused after it', async (t) => {
    const created = await api('POST', '/api/auth/clients/', { client_id: 'rotating', ...machine });
    const original: string = created.body.client_secret;
    t.equal(await grant('rotating', original), 'ok');

    const rotated = await api('POST', '/api/auth/clients/rotating/secret/');
    t.equal(rotated.status, 200);
    const fresh: string = rotated.body.client_secret;
    t.not(fresh, original);
    t.match(rotated.headers.get('cache-control') ?? '', /no-store/);
    t.equal(new Date(rotated.body.previous_secret_expires_at).getTime(), clock().getTime() + GRACE * 1000, 'the grace period ends GRACE seconds from now');
    t.equal((await api('GET', '/api/auth/clients/rotating/')).body.previous_secret_expires_at, rotated.body.previous_secret_expires_at, 'the view shows until when');

    t.equal(await grant('rotating', fresh), 'ok', 'the new secret works at once');
    t.equal(await grant('rotating', original), 'ok', 'the old one still works');
    clock.advance(GRACE - 1);
    t.equal(await grant('rotating', original), 'ok', 'a second before the end: still works');
    clock.advance(1);
    t.equal(await grant('rotating', original), 'invalid_client', 'at the end of the grace period: refused');
    t.equal(await grant('rotating', fresh), 'ok', 'the new secret goes on');

    const events = (await auditLog(server)).filter((e) => e.subjectId === 'rotating' && e.type === 'client.secret_rotated');
    t.equal(events.length, 1, 'the rotation is audited');
    t.notOk(JSON.stringify(events).includes(fresh), 'without the secret');
  });

  t.test('rotating again during the grace period ends the older secret at once', async (t) => {
    const first: string = (await api('POST', '/api/auth/clients/', { client_id: 'twice-rotated', ...machine })).body.client_secret;
    const second: string = (await api('POST', '/api/auth/clients/twice-rotated/secret/')).body.client_secret;
    const third: string = (await api('POST', '/api/auth/clients/twice-rotated/secret/')).body.client_secret;
    t.equal(await grant('twice-rotated', first), 'invalid_client', 'two rotations back: refused');
    t.equal(await grant('twice-rotated', second), 'ok', 'the previous one: in its grace period');
    t.equal(await grant('twice-rotated', third), 'ok', 'the current one');
  });

  t.test('concurrent rotations: each caller is shown a secret that works', async (t) => {
    const original: string = (await api('POST', '/api/auth/clients/', { client_id: 'raced', ...machine })).body.client_secret;
    const [a, b] = await Promise.all([api('POST', '/api/auth/clients/raced/secret/'), api('POST', '/api/auth/clients/raced/secret/')]);
    t.equal(a.status, 200);
    t.equal(b.status, 200);
    t.not(a.body.client_secret, b.body.client_secret);
    t.equal(await grant('raced', a.body.client_secret), 'ok', 'the first rotation\'s secret works (current or in grace)');
    t.equal(await grant('raced', b.body.client_secret), 'ok', 'the second rotation\'s secret works');
    t.equal(await grant('raced', original), 'invalid_client', 'the original, two rotations back, is refused');
  });

  t.test('a guessed secret never works, for a known or an unknown client', async (t) => {
    t.equal(await grant('rotating', 'x'.repeat(43)), 'invalid_client');
    t.equal(await grant('no-such-client', 'x'.repeat(43)), 'invalid_client');
  });
});

t.test('CLIENT_SECRET_GRACE_PERIOD=0: the old secret stops at once', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, CLIENT_SECRET_GRACE_PERIOD: '0' } });
  t.teardown(() => server.close());
  const { api } = await userWithToken(server, 'admin@example.com', ['admin']);
  const original: string = (await api('POST', '/api/auth/clients/', { client_id: 'no-grace', ...machine })).body.client_secret;
  const rotated = await api('POST', '/api/auth/clients/no-grace/secret/');
  t.equal(rotated.body.previous_secret_expires_at, null);
  const refused = await oauthError(client.clientCredentialsGrant(await discover(server, { clientId: 'no-grace', clientSecret: original })));
  t.equal(refused.error, 'invalid_client');
  t.ok(await client.clientCredentialsGrant(await discover(server, { clientId: 'no-grace', clientSecret: rotated.body.client_secret })));
});
