/**
 * The one error handler: the shape follows the route (`config.page` → HTML page, `config.oauth` or a
 * provider endpoint → `{error, error_description}`, otherwise `{error, message}`); statuses come from the
 * error catalogue; headers an AppError carries are sent; and nothing of an unexpected failure (stack trace,
 * SQL text, driver message) ever reaches the client, whatever the shape.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import t from 'tap';
import { z } from 'zod';
import { AppError, errorCodes, errorStatuses } from '../../src/errors/index.js';
import { registerErrorHandler } from '../../src/plugins/error-handler.js';

const SQL = 'select "password_hash" from "users" where "email" = $1';

/** What drizzle throws when a query fails: the SQL in the message, the driver error (with its stack) as cause. */
function failedQuery(): Error {
  const driver = Object.assign(new Error('relation "users" does not exist'), { code: '42P01', severity: 'ERROR' });
  return new Error(`Failed query: ${SQL}\nparams: alice@example.com`, { cause: driver });
}

async function appWith(throwing: () => unknown): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  registerErrorHandler(app, { oauthEndpoint: (request) => request.url.startsWith('/oidc/') });
  const handler = async () => {
    throw throwing();
  };
  app.get('/api/thing', handler);
  app.post('/token-like', { config: { oauth: true } }, handler);
  app.post('/form', { config: { page: true } }, handler);
  // A provider endpoint matches no route: our onRequest hooks (rate limits) answer before the provider.
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/oidc/')) throw throwing();
  });
  await app.ready();
  return app;
}

const shapes = [
  { name: 'JSON API', method: 'GET', url: '/api/thing' },
  { name: 'OAuth route', method: 'POST', url: '/token-like' },
  { name: 'provider endpoint', method: 'POST', url: '/oidc/token' },
  { name: 'page', method: 'POST', url: '/form' },
] as const;

t.test('an unexpected error is a masked 500 in every shape: no stack trace, no SQL', async (t) => {
  for (const thrown of [failedQuery, () => new TypeError("Cannot read properties of undefined (reading 'id')"), () => new AppError('internal_error', `cannot run ${SQL}`)]) {
    const app = await appWith(thrown);
    for (const shape of shapes) {
      const res = await app.inject({ method: shape.method, url: shape.url, headers: { authorization: 'Basic YTpi' } });
      const what = `${shape.name}, ${thrown().message.slice(0, 30)}`;
      t.equal(res.statusCode, 500, `${what}: 500`);
      t.notMatch(res.body, /select|password_hash|Failed query|alice@example|relation|Cannot read|\bat [\w.<>]+ \(|\.ts:\d+|\.js:\d+/, `${what}: nothing of the cause`);
      if (shape.name === 'page') {
        t.match(res.headers['content-type'], /^text\/html/, `${what}: a page`);
        t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/, `${what}: with the page headers`);
        t.match(res.body, 'Something went wrong');
      } else if (shape.name === 'JSON API') {
        t.same(res.json(), { error: 'internal_error', message: 'internal error' }, `${what}: {error, message}`);
      } else {
        t.same(res.json(), { error: 'server_error', error_description: 'internal error' }, `${what}: RFC 6749 §5.2 shape`);
        t.equal(res.headers['cache-control'], 'no-store');
      }
    }
    await app.close();
  }
});

t.test('a database that cannot answer is 503 with Retry-After in every shape', async (t) => {
  const app = await appWith(() => new Error('Failed query: select 1', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }) }));
  for (const shape of shapes) {
    const res = await app.inject({ method: shape.method, url: shape.url });
    t.equal(res.statusCode, 503, `${shape.name}: 503`);
    t.equal(res.headers['retry-after'], '2', `${shape.name}: Retry-After`);
    t.notMatch(res.body, /ECONNREFUSED|5432|select/, `${shape.name}: no driver detail`);
  }
  t.match((await app.inject({ method: 'POST', url: '/token-like' })).json(), { error: 'temporarily_unavailable' });
  t.match((await app.inject({ method: 'GET', url: '/api/thing' })).json(), { error: 'service_unavailable' });
  await app.close();
});

t.test('an AppError: its code, its catalogue status, its extra fields and headers, in the route shape', async (t) => {
  const app = await appWith(() => new AppError('too_many_requests', 'too many requests; slow down', { extra: { retry_after: 7 } }));
  const json = await app.inject({ method: 'GET', url: '/api/thing' });
  t.equal(json.statusCode, 429);
  t.equal(json.headers['retry-after'], '7');
  t.same(json.json(), { error: 'too_many_requests', message: 'too many requests; slow down', retry_after: 7 });
  for (const url of ['/token-like', '/oidc/token']) {
    const oauth = await app.inject({ method: 'POST', url });
    t.equal(oauth.statusCode, 429);
    t.equal(oauth.headers['retry-after'], '7');
    t.same(oauth.json(), { error: 'too_many_requests', error_description: 'too many requests; slow down', retry_after: 7 }, `${url}: OAuth shape`);
  }
  const page = await app.inject({ method: 'POST', url: '/form' });
  t.equal(page.statusCode, 429);
  t.equal(page.headers['retry-after'], '7');
  t.match(page.body, 'Too many attempts');
  await app.close();

  const challenged = await appWith(() => new AppError('invalid_token', 'the token is invalid, expired or revoked', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } }));
  const bearer = await challenged.inject({ method: 'GET', url: '/api/thing' });
  t.equal(bearer.statusCode, 401, 'the catalogue status');
  t.equal(bearer.headers['www-authenticate'], 'Bearer error="invalid_token"', 'the challenge it carries (RFC 6750 §3)');
  await challenged.close();

  const client = await appWith(() => new AppError('invalid_client', 'client authentication failed'));
  const basic = await client.inject({ method: 'POST', url: '/token-like', headers: { authorization: 'Basic YTpi' } });
  t.equal(basic.statusCode, 401);
  t.equal(basic.headers['www-authenticate'], 'Basic', 'RFC 6749 §5.2: a challenge in the scheme the client used');
  t.same(basic.json(), { error: 'invalid_client', error_description: 'client authentication failed' });
  await client.close();
});

t.test('framework errors keep their 4xx status and say what was wrong', async (t) => {
  const app = await appWith(() => z.object({ email: z.email() }).parse({ email: 'x' }));
  t.match((await app.inject({ method: 'GET', url: '/api/thing' })).json(), { error: 'invalid_request', message: /^email: / });
  await app.close();
  const bare = Fastify({ logger: false });
  registerErrorHandler(bare);
  bare.post('/api/thing', async () => ({}));
  const badJson = await bare.inject({ method: 'POST', url: '/api/thing', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
  t.equal(badJson.statusCode, 400);
  t.match(badJson.json(), { error: 'invalid_request' });
  const missing = await bare.inject({ method: 'GET', url: '/nowhere?x=1' });
  t.same(missing.json(), { error: 'not_found', message: 'no route for GET /nowhere' });
  await bare.close();
});

t.test('every code has a default status; throwers need not repeat it', async (t) => {
  for (const code of errorCodes) t.ok(errorStatuses[code] >= 400 && errorStatuses[code] < 600, code);
  t.equal(new AppError('conflict', 'x').status, 409);
  t.equal(new AppError('not_found', 'x').status, 404);
  t.equal(new AppError('method_not_allowed', 'x', 405).status, 405, 'an explicit status overrides');
  t.same(new AppError('too_many_attempts', 'x', 429, { retry_after: 1 }).extra, { retry_after: 1 }, 'the positional form still carries extra fields');
  t.equal(new AppError('internal_error', 'x').expose, false, '5xx are not exposed');
  t.equal(new AppError('delivery_unavailable', 'x').expose, true, 'except the client-facing ones');
});
