/**
 * Object references on /api/auth/tokens/{id}/ are checked against the caller: another user's id answers
 * 404 exactly like an unknown id, and changes nothing.
 */
import t from 'tap';
import { api, login, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { startServer } from '../helpers/server.js';

t.test('another user\'s token id is 404 and untouched', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  await seedAuthUser(server, 'mallory@example.com');
  const alice = await login(server);
  const mallory = await login(server, { email: 'mallory@example.com' });
  const pat = await api<{ id: string; token: string }>(server, 'POST', '/api/auth/tokens/', { token: alice.access_token, body: { name: 'alice-ci' } });

  const unknownId = '00000000-0000-4000-8000-000000000000';
  for (const id of [pat.body.id, alice.session_id]) {
    const put = await api(server, 'PUT', `/api/auth/tokens/${id}/`, { token: mallory.access_token, body: { name: 'pwned', is_active: false } });
    const putUnknown = await api(server, 'PUT', `/api/auth/tokens/${unknownId}/`, { token: mallory.access_token, body: { name: 'pwned', is_active: false } });
    t.equal(put.status, 404);
    t.same(put.body, putUnknown.body, 'PUT: exactly like an unknown id');
    const del = await api(server, 'DELETE', `/api/auth/tokens/${id}/`, { token: mallory.access_token });
    const delUnknown = await api(server, 'DELETE', `/api/auth/tokens/${unknownId}/`, { token: mallory.access_token });
    t.equal(del.status, 404);
    t.same(del.body, delUnknown.body, 'DELETE: exactly like an unknown id');
  }
  const list = await api<{ items: Array<{ id: string; name: string; is_active: boolean }> }>(server, 'GET', '/api/auth/tokens/', { token: alice.access_token });
  t.same(
    list.body.items.map((i) => [i.id, i.name, i.is_active]),
    [
      [pat.body.id, 'alice-ci', true],
      [alice.session_id, null, true],
    ],
    'nothing changed',
  );
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: pat.body.token })).status, 200, 'alice\'s token still works');
  const mallorys = await api<{ items: Array<{ id: string }> }>(server, 'GET', '/api/auth/tokens/', { token: mallory.access_token });
  t.same(mallorys.body.items.map((i) => i.id), [mallory.session_id], 'mallory sees only her own');
});

t.test('revoking a session from another device kills it at once', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const laptop = await login(server, { device_name: 'laptop' });
  const phone = await login(server, { device_name: 'phone' });
  t.equal((await api(server, 'DELETE', `/api/auth/tokens/${laptop.session_id}/`, { token: phone.access_token })).status, 204);
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: laptop.access_token })).status, 401, 'the access token is refused');
  t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: laptop.refresh_token } })).status, 401, 'the refresh token too');
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: phone.access_token })).status, 200);
});
