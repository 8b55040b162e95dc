/**
 * Secrets never reach the log: Authorization and Cookie headers, credentials in bodies, and secret-bearing
 * query parameters are redacted by the logger configuration the server uses.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { loggerOptions, redactUrl } from '../../src/plugins/logger.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { testConfig } from '../helpers/server.js';

t.test('redactUrl masks secret query parameters only', async (t) => {
  t.equal(redactUrl('/cb?code=abc&state=xyz&x=1'), '/cb?code=%5Bredacted%5D&state=%5Bredacted%5D&x=1');
  t.equal(redactUrl('/oidc/session/end?id_token_hint=eyJ.x.y'), '/oidc/session/end?id_token_hint=%5Bredacted%5D');
  t.equal(redactUrl('/plain/path'), '/plain/path');
  t.equal(redactUrl('/oidc/auth?client_id=web&scope=openid'), '/oidc/auth?client_id=web&scope=openid');
});

t.test('the running server logs no credentials', async (t) => {
  let logged = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged += chunk.toString();
      done();
    },
  });
  const db = await createTestDatabase();
  const port = await freePort();
  const config = testConfig(port, { LOG_LEVEL: 'info' });
  const app = await buildApp(config, { database: db.database, logger: Object.assign(loggerOptions('info') as object, { stream }) });
  await app.listen({ port, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await db.drop();
  });
  const origin = `http://127.0.0.1:${port}`;
  const secret = 'SuperSecretClientValue0123456789abcdef';

  await fetch(`${origin}/oidc/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`someclient:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      cookie: 'keryu.session=SessionCookieValue123',
    },
    body: 'grant_type=client_credentials',
  });
  await fetch(`${origin}/oidc/session/end?id_token_hint=HintTokenValue123`);
  await fetch(`${origin}/interaction/abc/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'email=a%40b.c&password=PlainPasswordValue123&csrf=x',
  });
  app.log.info({ password: 'LoggedPasswordValue', client_secret: secret, nested: { refresh_token: 'RefreshTokenValue123' } }, 'deliberate');

  t.match(logged, /deliberate/, 'logs were captured');
  t.match(logged, /\[redacted\]/);
  for (const value of [secret, Buffer.from(`someclient:${secret}`).toString('base64'), 'SessionCookieValue123', 'HintTokenValue123', 'PlainPasswordValue123', 'LoggedPasswordValue', 'RefreshTokenValue123']) {
    t.notOk(logged.includes(value), `log does not contain ${value.slice(0, 12)}…`);
  }
});
