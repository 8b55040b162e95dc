/**
 * Unknown accounts are checked against a dummy hash whose argon2 cost is that of a real account: picked per
 * identifier (keyed, fixed) in proportion to the costs stored hashes have. Accounts imported with other
 * parameters keep their hash until their first sign-in; were unknown identifiers always checked at today's
 * cost, the verification time would tell an imported account from a missing one. Checked by the
 * parameters used, not by timing.
 */
import { hash } from '@node-rs/argon2';
import t from 'tap';
import { costOf, CURRENT_COST } from '../../src/services/password.js';
import { api, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { startServer } from '../helpers/server.js';

const IMPORTED = { memoryCost: 8192, timeCost: 3, parallelism: 1 };
const unknownEmails = Array.from({ length: 400 }, (_, i) => `nobody-${i}@example.com`);

t.test('only accounts at today\'s cost: unknown identifiers are checked at today\'s cost', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const { users } = server.app.keryu.services;
  for (const email of unknownEmails.slice(0, 50)) t.same(await users.dummyCostFor(email), CURRENT_COST);
});

t.test('with imported accounts: unknown identifiers look like them as often as they occur', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const { users } = server.app.keryu.services;
  await seedAuthUser(server);
  for (let i = 0; i < 3; i++) {
    const passwordHash = await hash(`imported password ${i}`, { algorithm: 2, ...IMPORTED });
    await users.createUser({ email: `imported-${i}@example.com`, passwordHash, name: 'Imported', emailVerified: true }, { type: 'system' });
  }

  const picks = await Promise.all(unknownEmails.map((email) => users.dummyCostFor(email)));
  const imported = picks.filter((c) => c.memoryCost === IMPORTED.memoryCost && c.timeCost === IMPORTED.timeCost).length;
  t.ok(picks.every((c) => JSON.stringify(c) === JSON.stringify(CURRENT_COST) || JSON.stringify(c) === JSON.stringify(IMPORTED)), 'only costs real accounts have');
  t.ok(imported > 400 * 0.6 && imported < 400 * 0.9, `about 3 in 4 unknown identifiers use the imported cost (${imported} of 400)`);
  t.same(await users.dummyCostFor(unknownEmails[7]!), picks[7], 'fixed per identifier: a repeated probe shows the same cost');
  t.same(await users.dummyCostFor(unknownEmails[7]!.toUpperCase()), picks[7], 'whatever its case');

  const stored = await server.app.keryu.database.db.query.users.findFirst({ where: (u, { eq }) => eq(u.email, 'imported-0@example.com') });
  t.same(costOf(stored?.passwordHash ?? ''), IMPORTED, 'the imported account is verified at its own cost');
  for (const email of [unknownEmails[picks.findIndex((c) => c.memoryCost === IMPORTED.memoryCost)]!, unknownEmails[picks.findIndex((c) => c.memoryCost === CURRENT_COST.memoryCost)]!]) {
    t.match(await api(server, 'POST', '/api/auth/login/', { body: { email, password: 'whatever password' } }), { status: 401, body: { error: 'invalid_credentials' } }, 'an unknown account answers as before, at either cost');
  }
});
