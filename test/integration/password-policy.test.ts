/** The NIST SP 800-63B password policy and transparent re-hashing at login. */
import { hash } from '@node-rs/argon2';
import t from 'tap';
import { eq } from 'drizzle-orm';
import { users } from '../../src/db/schema/index.js';
import { createPasswordPolicy } from '../../src/services/password-policy.js';
import { api, NO_RATE_LIMITS } from '../helpers/auth.js';
import { startServer } from '../helpers/server.js';

t.test('policy: length after NFKC, at most 256, strength with the user\'s own data as context, no composition rules', async (t) => {
  const policy = createPasswordPolicy({ minLength: 10, minScore: 3 });
  await t.rejects(policy.check('short one'), { code: 'weak_password', message: /at least 10 characters/ });
  await t.rejects(policy.check('x'.repeat(257)), { code: 'weak_password', message: /at most 256/ });
  await t.rejects(policy.check('password1234'), { code: 'weak_password', message: /too easy to guess/ }, 'common');
  await t.rejects(policy.check('qwertyuiopasdf'), { code: 'weak_password' }, 'keyboard walk');
  await t.rejects(policy.check('alice.smith2024', { email: 'alice.smith@example.com', name: 'Alice Smith' }), { code: 'weak_password' }, 'the user\'s own email');
  t.equal(await policy.check('purple elephants juggle quietly'), 'purple elephants juggle quietly', 'a passphrase without digits or symbols is fine');
  t.equal(await policy.check('ｐｕｒｐｌｅ elephants juggle quietly'), 'purple elephants juggle quietly', 'NFKC-normalized');
  await t.rejects(createPasswordPolicy({ minLength: 16, minScore: 3 }).check('tR7#kq!vZ2@m'), { message: /at least 16/ }, 'the minimum is configurable');
});

t.test('a hash made with other parameters is upgraded at the next login', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const old = await hash('purple elephants juggle quietly', { algorithm: 2, memoryCost: 8192, timeCost: 1, parallelism: 1 });
  const user = await server.app.keryu.services.users.createUser({ email: 'old@example.com', passwordHash: old }, { type: 'system' });
  t.equal((await api(server, 'POST', '/api/auth/login/', { body: { email: 'old@example.com', password: 'purple elephants juggle quietly' } })).status, 200);
  const [row] = await server.app.keryu.database.db.select({ hash: users.passwordHash }).from(users).where(eq(users.id, user.id));
  t.match(row?.hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 're-hashed with today\'s parameters');
  t.equal((await api(server, 'POST', '/api/auth/login/', { body: { email: 'old@example.com', password: 'purple elephants juggle quietly' } })).status, 200, 'and still works');
});
