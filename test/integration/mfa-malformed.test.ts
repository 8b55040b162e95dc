/**
 * Hostile input on the MFA endpoints: malformed JSON, wrong types, arrays, nulls, over-long fields,
 * oversized bodies and odd content types answer a 4xx with {error, message}, never a 500 and never a
 * stack trace; route parameters that are not ids answer 404, 400 or 414.
 */
import t from 'tap';
import { api } from '../helpers/auth.js';
import { challengeFor, enrolTotp, seedWithSession, startMfaServer } from '../helpers/mfa.js';

t.test('malformed and oversized bodies on the MFA endpoints', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;
  const { factorId } = await enrolTotp(server, token, clock);
  const challenge = await challengeFor(server, 'alice@example.com');

  const routes: Array<{ method: string; path: string; auth: boolean; valid: Record<string, unknown> }> = [
    { method: 'POST', path: '/api/auth/verify/', auth: false, valid: { challenge_id: challenge.challenge_id, method: 'totp', code: '123456' } },
    { method: 'POST', path: '/api/auth/verify/resend/', auth: false, valid: { challenge_id: challenge.challenge_id, method: 'email' } },
    { method: 'POST', path: '/api/auth/mfa/totp/', auth: true, valid: {} },
    { method: 'POST', path: '/api/auth/mfa/sms/', auth: true, valid: { phone: '+14155552671' } },
    { method: 'POST', path: '/api/auth/mfa/email/', auth: true, valid: { email: 'a@example.com' } },
    { method: 'POST', path: `/api/auth/mfa/totp/${factorId}/confirm/`, auth: true, valid: { code: '123456' } },
    { method: 'POST', path: '/api/auth/mfa/reauthenticate/', auth: true, valid: { method: 'sms' } },
    { method: 'PUT', path: `/api/auth/mfa/${factorId}/`, auth: true, valid: { preferred: true } },
    { method: 'DELETE', path: `/api/auth/mfa/${factorId}/`, auth: true, valid: { password: 'x' } },
  ];
  const bad: Array<[string, { raw: string; headers?: Record<string, string> }]> = [
    ['truncated JSON', { raw: '{"code": "12' }],
    ['not JSON at all', { raw: 'code=123456' }],
    ['an array', { raw: '[1,2,3]' }],
    ['a string', { raw: '"hello"' }],
    ['a number', { raw: '42' }],
    ['null', { raw: 'null' }],
    ['deeply nested', { raw: `${'['.repeat(5000)}${']'.repeat(5000)}` }],
    ['a __proto__ key', { raw: '{"__proto__": {"admin": true}, "code": "123456"}' }],
    ['NUL bytes', { raw: '{"code": "\\u0000\\u0000", "challenge_id": "\\u0000", "phone": "\\u0000", "email": "\\u0000", "method": "\\u0000", "password": "\\u0000", "preferred": true}' }],
    ['wrong types', { raw: '{"code": 123456, "challenge_id": 1, "phone": [], "email": {}, "method": null, "password": false, "preferred": "yes", "device_id": 7}' }],
    ['over-long fields', { raw: JSON.stringify({ code: '1'.repeat(300), challenge_id: 'c'.repeat(300), method: 'm'.repeat(60), phone: `+1${'5'.repeat(100)}`, email: `${'a'.repeat(300)}@example.com`, password: 'p'.repeat(2000), device_id: 'd'.repeat(300) }) }],
    ['an oversized body', { raw: JSON.stringify({ code: 'x'.repeat(200 * 1024) }) }],
    ['XML', { raw: '<code>123456</code>', headers: { 'content-type': 'application/xml' } }],
    ['a form body', { raw: 'code=123456', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
  ];

  // Some of the odd bodies are acceptable to a route whose fields are all optional (e.g. null for a TOTP enrolment).
  const mustFail = new Set(['truncated JSON', 'not JSON at all', 'an array', 'a string', 'a number', 'deeply nested', 'wrong types', 'over-long fields', 'an oversized body', 'XML', 'a form body']);
  for (const route of routes) {
    for (const [label, body] of bad) {
      const res = await api<{ error?: string; message?: string }>(server, route.method, route.path, { ...body, ...(route.auth ? { token } : {}) });
      const where = `${route.method} ${route.path.replace(/[0-9a-f-]{36}/, ':id')} with ${label}`;
      t.ok(res.status < 500, `${where}: ${res.status}, not a 5xx`);
      if (mustFail.has(label)) t.ok(res.status >= 400, `${where}: refused`);
      if (res.status < 400) continue;
      t.match(res.body, { error: String, message: String }, `${where}: {error, message}`);
      t.notOk(JSON.stringify(res.body).includes('at '), `${where}: no stack trace`);
    }
  }
  t.match(await api(server, 'POST', '/api/auth/verify/', { raw: '{"code": "12' }), { status: 400, body: { error: 'invalid_request' } }, 'malformed JSON: 400 invalid_request');
  t.match(await api(server, 'POST', '/api/auth/mfa/sms/', { token, body: { phone: 14155552671 } }), { status: 400, body: { error: 'invalid_request' } });
  t.match(await api(server, 'POST', '/api/auth/verify/', { body: { challenge_id: 'x'.repeat(201), method: 'totp', code: '1' } }), { status: 400, body: { error: 'invalid_request', message: /challenge_id/ } }, 'the message names the field');
  t.match(await api(server, 'POST', '/api/auth/verify/', { raw: JSON.stringify({ code: 'x'.repeat(200 * 1024) }) }), { status: 413, body: { error: 'payload_too_large' } }, 'an oversized body: 413');

  // Route parameters.
  for (const [method, path] of [
    ['POST', '/api/auth/mfa/webauthn/00000000-0000-0000-0000-000000000000/confirm/'],
    ['POST', `/api/auth/mfa/totp/${'x'.repeat(500)}/confirm/`],
    ['POST', '/api/auth/mfa/totp/..%2F..%2Fetc/confirm/'],
    ['PUT', `/api/auth/mfa/${'9'.repeat(101)}/`],
    ['DELETE', "/api/auth/mfa/' OR 1=1 --/"],
    ['DELETE', '/api/auth/devices/%00/'],
    ['DELETE', `/api/auth/devices/${'a'.repeat(150)}/`],
  ] as const) {
    const res = await api(server, method, path, { token, body: method === 'PUT' ? { preferred: true } : method === 'DELETE' && path.includes('/mfa/') ? { password: 'x' } : { code: '123456' } });
    t.ok([400, 404, 414].includes(res.status), `${method} ${path.slice(0, 50)}: ${res.status}`);
    t.match(res.body, { error: String, message: String });
  }
  t.equal((await api(server, 'GET', '/api/auth/mfa/', { token })).status, 200, 'the server is fine afterwards');
});

t.test('the security report page refuses junk with a page, not a 500', async (t) => {
  const { server } = await startMfaServer(t);
  const post = (body: string, type = 'application/x-www-form-urlencoded') => fetch(`${server.origin}/security/report`, { method: 'POST', headers: { 'content-type': type }, body });
  for (const body of ['', 'token=', 'token=x&csrf=y', `token=${'x'.repeat(500)}&csrf=y`, 'csrf=y', '%%%', `token=${'a'.repeat(20_000)}`]) {
    const res = await post(body);
    t.ok(res.status >= 400 && res.status < 500, `POST ${body.slice(0, 20)}: ${res.status}`);
  }
  t.ok((await post('{"token": "x"}', 'application/json')).status < 500);
  for (const query of ['', '?token=', '?token=unknown', `?token=${'x'.repeat(500)}`, '?token[]=a&token[]=b']) {
    const res = await fetch(`${server.origin}/security/report${query}`);
    t.equal(res.status, 400, `GET ${query.slice(0, 20)}`);
    t.match(await res.text(), /can no longer be used/);
  }
});
