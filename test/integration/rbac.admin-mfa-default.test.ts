/**
 * The built-in `admin` role requires a second factor in a new installation (created at start-up with
 * `mfa_required`), so an admin signed in with a password alone is refused by the management API; the bootstrap
 * file can say otherwise (`roles: [{name: admin, mfa_required: false}]`); an existing role keeps its setting.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import t from 'tap';
import { roles } from '../../src/db/schema/index.js';
import { createTestDatabase } from '../helpers/db.js';
import { api, seedAuthUser } from '../helpers/auth.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { assignRoles, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

/** A database with no admin role yet: what a new installation starts from. */
async function newInstallation(t: { teardown(fn: () => unknown): void }) {
  const db = await createTestDatabase();
  await db.database.db.delete(roles).where(eq(roles.name, 'admin'));
  t.teardown(() => db.drop());
  return db;
}
const adminMfa = async (server: Awaited<ReturnType<typeof startServer>>) =>
  (await server.app.keryu.database.db.select({ mfa: roles.mfaRequired }).from(roles).where(eq(roles.name, 'admin')))[0]?.mfa;

t.test('a new installation: the admin role requires MFA', async (t) => {
  const db = await newInstallation(t);
  const server = await startServer({ db });
  t.teardown(() => server.close());
  t.equal(await adminMfa(server), true, 'created with mfa_required');
  const admin = await seedAuthUser(server, 'admin@example.com');
  await assignRoles(server, admin.id, ['admin']);
  const signIn = await api<Record<string, unknown>>(server, 'POST', '/api/auth/login/', { body: { email: 'admin@example.com', password: TEST_PASSWORD } });
  t.equal(signIn.body.access_token, undefined, 'a password alone gets an admin no session');
  t.equal(signIn.body.mfa_required, true, 'the sign-in asks for a second factor (enrolment)');
});

t.test('the bootstrap file can turn it off', async (t) => {
  const db = await newInstallation(t);
  const dir = await mkdtemp(join(tmpdir(), 'keryu-admin-mfa-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bootstrap.yaml');
  await writeFile(file, 'roles:\n  - name: admin\n    mfa_required: false\n');
  const server = await startServer({ db, env: { KERYU_BOOTSTRAP: file } });
  t.teardown(() => server.close());
  t.equal(await adminMfa(server), false, 'the file said so');
  const { api } = await userWithToken(server, 'admin@example.com', ['admin']);
  t.equal((await api('GET', '/api/auth/clients/')).status, 200, 'a password-only admin may use the API');
});

t.test('an existing installation keeps its admin role as it is', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  t.equal(await adminMfa(server), false, 'an admin role created without mfa_required stays so across start-ups');
});
