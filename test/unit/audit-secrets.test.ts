/**
 * Secret stripping of audit details, without a database: what `stripSecrets` redacts and keeps, and that
 * `record` strips before the row reaches the database (a stand-in db captures the insert).
 */
import t from 'tap';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { DbOrTx } from '../../src/db/client.js';
import { createAuditService, stripSecrets } from '../../src/services/audit.js';

t.test('stripSecrets removes secret-looking values at any depth', async (t) => {
  t.same(stripSecrets({ email: 'a@b.c', password: 'x', nested: { client_secret: 'y', list: [{ refresh_token: 'z' }] }, token_type: 'Bearer' }), {
    email: 'a@b.c',
    password: '[redacted]',
    nested: { client_secret: '[redacted]', list: [{ refresh_token: '[redacted]' }] },
    token_type: 'Bearer',
  });
});

t.test('every key that names a secret is redacted, whatever its value', async (t) => {
  const secretKeys = [
    'password',
    'new_password',
    'pass',
    'currentPassword',
    'client_secret',
    'secret',
    'access_token',
    'id_token_hint',
    'token',
    'code',
    'user_code',
    'code_verifier',
    'otp',
    'private_key',
    'privateJwk',
    'cookie',
    'Authorization',
    'client_assertion',
    'key',
    'signing_key',
  ];
  for (const key of secretKeys) {
    for (const value of ['s3cr3t', 42, { nested: 'inside' }, ['a', 'b'], null]) {
      t.same(stripSecrets({ [key]: value }), { [key]: '[redacted]' }, `${key}: ${JSON.stringify(value)}`);
    }
  }
});

t.test('what describes an event is kept', async (t) => {
  const details = {
    token_type: 'Bearer',
    error_code: 'invalid_grant',
    email: 'alice@example.com',
    client_id: 'web',
    scope: 'openid email',
    reason: 'logout_all',
    keyboard: 'qwerty',
    keys: 3,
    monkey: 'not a key',
    count: 0,
    ok: false,
    empty: null,
    list: [1, 'two', { reason: 'x' }],
  };
  t.same(stripSecrets(details), details);
});

t.test('primitives pass through; arrays are walked; the input is not modified', async (t) => {
  t.equal(stripSecrets('password'), 'password', 'a string value alone is not a key');
  t.equal(stripSecrets(7), 7);
  t.equal(stripSecrets(null), null);
  t.equal(stripSecrets(undefined), undefined);
  t.same(stripSecrets([{ password: 'x' }, 'y']), [{ password: '[redacted]' }, 'y']);
  const input = { user: { password: 'x' } };
  stripSecrets(input);
  t.same(input, { user: { password: 'x' } }, 'a copy is redacted, never the caller\'s object');
});

t.test('nesting deeper than eight levels is cut, so a hostile or cyclic value cannot exhaust the stack', async (t) => {
  const deep = (levels: number): Record<string, unknown> => (levels === 0 ? { password: 'x', note: 'bottom' } : { next: deep(levels - 1) });
  const at = (value: unknown, levels: number): unknown => (levels === 0 ? value : at((value as { next: unknown }).next, levels - 1));
  t.same(at(stripSecrets(deep(7)), 7), { password: '[redacted]', note: 'bottom' }, 'eight levels deep is still walked');
  t.equal(at(stripSecrets(deep(9)), 9), '[depth]', 'below that, the value is replaced');
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  t.doesNotThrow(() => stripSecrets(cyclic), 'a cycle ends at the depth bound');
});

t.test('record strips the details before the row is written', async (t) => {
  const written: Record<string, unknown>[] = [];
  // The audit writer sends one statement whose one parameter is the JSON array of rows.
  const dialect = new PgDialect();
  const db = {
    execute: async (query: SQL) => {
      const { params } = dialect.sqlToQuery(query);
      t.equal(params.length, 1, 'one parameter');
      written.push(...(JSON.parse(String(params[0])) as Record<string, unknown>[]));
    },
  } as unknown as DbOrTx;
  const audit = createAuditService({ db, log: { error: () => {} } });
  await audit.record({
    type: 'login',
    outcome: 'failure',
    actor: { type: 'anonymous' },
    details: { email: 'alice@example.com', password: 'hunter2', attempt: { otp: '123456', method: 'totp' } },
  });
  t.equal(written.length, 1);
  t.same(written[0]?.details, { email: 'alice@example.com', password: '[redacted]', attempt: { otp: '[redacted]', method: 'totp' } });
  t.notMatch(JSON.stringify(written), /hunter2|123456/, 'no secret anywhere in the row');

  await audit.record({ type: 'logout', outcome: 'success', actor: { type: 'system' } });
  t.same(written[1]?.details, {}, 'no details: an empty object');
});
