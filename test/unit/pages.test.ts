/**
 * The page module: one CSRF token scheme for every form (bound to a purpose and a subject, compared in
 * constant time), the headers every page carries (ours and the provider's), and configured lifetimes in
 * the words the pages use.
 */
import t from 'tap';
import { createFormCsrf } from '../../src/views/csrf.js';
import { pageSecurityHeaders } from '../../src/views/render.js';
import { durationInWords } from '../../src/lib/duration.js';

t.test('a CSRF token verifies only for the purpose and subject it was issued for', async (t) => {
  const csrf = createFormCsrf(Buffer.alloc(32, 1));
  const token = csrf.issue('interaction', 'uid-1');
  t.ok(csrf.verify('interaction', 'uid-1', token));
  t.notOk(csrf.verify('interaction', 'uid-2', token), 'another subject');
  t.notOk(csrf.verify('password-reset', 'uid-1', token), 'another purpose');
  t.notOk(createFormCsrf(Buffer.alloc(32, 2)).verify('interaction', 'uid-1', token), 'another key');
  t.notOk(csrf.verify('interaction', 'uid-1', `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`), 'one character changed');
  t.notOk(csrf.verify('interaction', 'uid-1', undefined), 'missing');
  t.notOk(csrf.verify('interaction', 'uid-1', [token]), 'not a string');
  t.notOk(csrf.verify('interaction', 'uid-1', token + 'x'.repeat(100)), 'too long');
  t.notOk(csrf.verify('interaction', 'uid-1', ''), 'empty');
});

t.test('every page: no script, no inline style, not framed, not cached', async (t) => {
  const csp = pageSecurityHeaders['content-security-policy'] ?? '';
  t.match(csp, /default-src 'none'/);
  t.match(csp, /frame-ancestors 'none'/);
  t.match(csp, /style-src 'self'(;|$)/, 'styles only from our stylesheet');
  t.notMatch(csp, /unsafe-inline|unsafe-eval|script-src/, 'no script source at all');
  t.equal(pageSecurityHeaders['cache-control'], 'no-store');
  t.equal(pageSecurityHeaders['x-frame-options'], 'DENY');
});

t.test('lifetimes in words', async (t) => {
  t.equal(durationInWords(300), '5 minutes');
  t.equal(durationInWords(60), '1 minute');
  t.equal(durationInWords(1800), '30 minutes');
  t.equal(durationInWords(90), '90 seconds');
  t.equal(durationInWords(1), '1 second');
  t.equal(durationInWords(7200), '2 hours');
});
