/**
 * The keryu CLI and the bootstrap file, run in-process against an isolated database (PostgreSQL when
 * TEST_DATABASE_URL is set, otherwise an on-disk PGlite in a scratch DATA_DIR).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import t from 'tap';
import { runCli } from '../../src/cli.js';
import { createTestDatabase, onPostgres } from '../helpers/db.js';
import { TEST_SECRET } from '../helpers/defaults.js';

async function setup(t: { teardown(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'keryu-cli-'));
  let env: Record<string, string> = { KERYU_SECRET: TEST_SECRET, DATA_DIR: dir, LOG_LEVEL: 'silent' };
  if (onPostgres) {
    const db = await createTestDatabase();
    await db.database.close();
    env = { ...env, DATABASE_URL: db.url! };
    t.teardown(() => db.drop());
  }
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = async (argv: string[], stdin = '') => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, {
      env,
      stdin: Readable.from([stdin]),
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    });
    return { code, stdout, stderr };
  };
  return { dir, run, env };
}

/** These tests register no client: validating one would be a mistake. */
const noClientRegistration = {
  secretKey: Buffer.alloc(32),
  validateMetadata: async () => {
    throw new Error('no client registration in this test');
  },
};

t.test('user create, client create, keys, errors', async (t) => {
  const { run } = await setup(t);

  const created = await run(['user', 'create', '--email', ' Bob@Example.COM ', '--name', 'Bob', '--password-stdin', '--json'], 'a very long passphrase\n');
  t.equal(created.code, 0, created.stderr);
  const user = JSON.parse(created.stdout) as { id: string; email: string };
  t.equal(user.email, 'bob@example.com', 'email normalized');
  t.notMatch(created.stdout, /passphrase/, 'the password is never printed');

  const dup = await run(['user', 'create', '--email', 'bob@example.com', '--password-stdin'], 'another long passphrase');
  t.equal(dup.code, 1);
  t.match(dup.stderr, /^keryu: a user with this email already exists\n$/, 'one-line error');

  const weak = await run(['user', 'create', '--email', 'c@example.com', '--password-stdin'], 'short');
  t.equal(weak.code, 1);
  t.match(weak.stderr, /at least 10 characters/);

  const badPhone = await run(['user', 'create', '--email', 'd@example.com', '--phone', '555-0100']);
  t.equal(badPhone.code, 1);
  t.match(badPhone.stderr, /E\.164/);

  const client = await run(['client', 'create', '--client-id', 'web', '--redirect-uri', 'https://app.example.com/cb', '--scope', 'openid offline_access', '--json']);
  t.equal(client.code, 0, client.stderr);
  const parsed = JSON.parse(client.stdout) as { client_id: string; client_secret: string };
  t.ok(parsed.client_secret.length >= 43, 'generated secret has 256 bits');
  t.notOk('first_party' in parsed, 'a client is not first-party unless asked');

  const firstParty = await run(['client', 'create', '--client-id', 'console', '--public', '--first-party', '--redirect-uri', 'https://console.example.com/cb', '--json']);
  t.equal(firstParty.code, 0, firstParty.stderr);
  t.equal((JSON.parse(firstParty.stdout) as { first_party?: boolean }).first_party, true, '--first-party marks the client for API tokens');

  const shortSecret = await run(['client', 'create', '--client-id', 'svc', '--grant-type', 'client_credentials', '--secret-stdin'], 'too-short');
  t.equal(shortSecret.code, 1);
  t.match(shortSecret.stderr, /client_secret: must be at least 32 characters/);

  const publicNoPkce = await run(['client', 'create', '--client-id', 'spa', '--public', '--no-pkce', '--redirect-uri', 'https://spa.example.com/cb']);
  t.equal(publicNoPkce.code, 1);
  t.match(publicNoPkce.stderr, /PKCE/);

  const badRedirect = await run(['client', 'create', '--client-id', 'bad', '--redirect-uri', 'not-a-url']);
  t.equal(badRedirect.code, 1);
  t.match(badRedirect.stderr, /redirect_uris/);

  const rotated = await run(['keys', 'rotate', '--activate-in', '60', '--json']);
  t.equal(rotated.code, 0, rotated.stderr);
  const list = await run(['keys', 'list', '--json']);
  const keys = JSON.parse(list.stdout) as Array<{ state: string }>;
  t.equal(keys.filter((k) => k.state === 'signing').length, 2, 'old keys still sign during the delay');
  t.equal(keys.filter((k) => k.state === 'pending').length, 2, 'new keys are published but not signing');

  t.equal((await run(['frobnicate'])).code, 2, 'unknown command → usage error');
  t.equal((await run([])).code, 2);
  t.equal((await run(['help'])).code, 0);
  t.equal((await run(['user', 'create'])).code, 2, 'missing --email → usage error');
});

t.test('bootstrap is idempotent and never resets a password', async (t) => {
  const { dir, run } = await setup(t);
  const file = join(dir, 'bootstrap.yaml');
  const doc = (name: string, password: string) => `
clients:
  - client_id: web-app
    client_secret: 3f9c1e7a0b5d42c8a6e1f0d9b7c3a5e2
    token_endpoint_auth_method: client_secret_basic
    redirect_uris: [https://app.example.com/callback]
    post_logout_redirect_uris: [https://app.example.com/]
    grant_types: [authorization_code, refresh_token]
    response_types: [code]
    scope: openid profile email offline_access
users:
  - email: alice@example.com
    password: ${password}
    name: ${name}
    phone: "+15550100"
resource_servers:
  - identifier: https://api.example.com
    scope: orders.read
`;
  await writeFile(file, doc('Alice', 'a long passphrase one'));
  const first = await run(['bootstrap', file, '--json']);
  t.equal(first.code, 0, first.stderr);
  t.same(JSON.parse(first.stdout), {
    clients: { 'web-app': 'created' },
    users: { 'alice@example.com': 'created' },
    resource_servers: { 'https://api.example.com': 'created' },
  });

  const second = await run(['bootstrap', file, '--json']);
  t.same(JSON.parse(second.stdout), {
    clients: { 'web-app': 'unchanged' },
    users: { 'alice@example.com': 'unchanged' },
    resource_servers: { 'https://api.example.com': 'unchanged' },
  }, 'applying twice changes nothing');

  await writeFile(file, doc('Alice Liddell', 'a different passphrase'));
  const third = await run(['bootstrap', file, '--json']);
  t.same(JSON.parse(third.stdout).users, { 'alice@example.com': 'updated' }, 'profile fields follow the file');
  t.match(third.stdout, /"web-app":"unchanged"/);
});

t.test('an invalid bootstrap file names the entry and field and writes nothing', async (t) => {
  const { dir, run } = await setup(t);
  const file = join(dir, 'bad.yaml');
  await writeFile(
    file,
    `
clients:
  - client_id: ok-client
    client_secret: 3f9c1e7a0b5d42c8a6e1f0d9b7c3a5e2
    redirect_uris: [https://app.example.com/callback]
  - client_id: web-app
    client_secret: short
    redirect_uris: [https://app.example.com/callback]
users:
  - email: not-an-email
`,
  );
  const result = await run(['bootstrap', file]);
  t.equal(result.code, 1);
  t.match(result.stderr, /clients\[1\] \(web-app\)\.client_secret: must be at least 32 characters/);
  t.match(result.stderr, /users\[0\] \(not-an-email\)\.email: must be an email address/);
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');

  const missing = await run(['bootstrap', join(dir, 'nope.yaml')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot read/);

  await writeFile(file, 'clients: [ {');
  t.match((await run(['bootstrap', file])).stderr, /not valid YAML/);

  await writeFile(file, 'clients: []\nsurprise: true\n');
  t.match((await run(['bootstrap', file])).stderr, /surprise|Unrecognized key/i, 'unknown keys are refused');
});

t.test('user unlock clears failed-login counts; weak passwords are refused everywhere', async (t) => {
  const { run, dir, env } = await setup(t);
  t.match((await run(['user', 'create', '--email', 'weak@example.com', '--password-stdin'], 'password1234')).stderr, /too easy to guess/, 'CLI applies the policy');
  const file = join(dir, 'weak.yaml');
  await writeFile(file, 'users:\n  - email: weak2@example.com\n    password: weak2@example.com\n');
  t.match((await run(['bootstrap', file])).stderr, /users\[0\]\.password: the password is too easy to guess/, 'bootstrap too');

  t.equal((await run(['user', 'create', '--email', 'locked@example.com', '--password-stdin'], 'a very long passphrase')).code, 0);
  // Lock the identifier through the service the server uses, then unlock it from the CLI.
  const { parseConfig } = await import('../../src/config/index.js');
  const { openDatabase, databaseTarget } = await import('../../src/db/client.js');
  const { createServices } = await import('../../src/services/container.js');
  const raw = parseConfig(env);
  const lock = async () => {
    const database = await openDatabase(databaseTarget(raw));
    const silent = { error: () => {}, info: () => {}, warn: () => {} };
    const services = createServices({ config: { ...raw, secret: TEST_SECRET }, database, clientRegistration: noClientRegistration, log: silent });
    for (let i = 0; i < 20; i++) await services.bruteForce.recordFailure({ identifier: 'locked@example.com' });
    const allowed = await services.bruteForce.assertAllowed({ identifier: 'locked@example.com' }).then(() => true, () => false);
    await services.audit.flush();
    await database.close();
    return allowed;
  };
  t.equal(await lock(), false, 'locked');
  const unlocked = await run(['user', 'unlock', '--email', ' Locked@Example.com ', '--json']);
  t.equal(unlocked.code, 0, unlocked.stderr);
  t.match(JSON.parse(unlocked.stdout), { email: 'locked@example.com', cleared: 1 });
  const database = await openDatabase(databaseTarget(raw));
  const services = createServices({ config: { ...raw, secret: TEST_SECRET }, database, clientRegistration: noClientRegistration, log: { error: () => {}, info: () => {}, warn: () => {} } });
  await t.resolves(services.bruteForce.assertAllowed({ identifier: 'locked@example.com' }), 'unlocked');
  await database.close();
  t.equal((await run(['user', 'unlock'])).code, 2, 'needs --email');
});

t.test('user mfa-reset removes every factor of a user', async (t) => {
  const { run, env } = await setup(t);
  t.equal((await run(['user', 'create', '--email', 'lost@example.com', '--password-stdin'], 'a very long passphrase')).code, 0);
  const { parseConfig } = await import('../../src/config/index.js');
  const { openDatabase, databaseTarget } = await import('../../src/db/client.js');
  const { createServices } = await import('../../src/services/container.js');
  const raw = parseConfig(env);
  const withServices = async <T>(work: (services: ReturnType<typeof createServices>) => Promise<T>): Promise<T> => {
    const database = await openDatabase(databaseTarget(raw));
    const services = createServices({ config: { ...raw, secret: TEST_SECRET }, database, clientRegistration: noClientRegistration, log: { error: () => {}, info: () => {}, warn: () => {} } });
    try {
      return await work(services);
    } finally {
      await services.audit.flush();
      await database.close();
    }
  };
  await withServices(async (s) => {
    const user = (await s.users.findUserByEmail('lost@example.com'))!;
    await s.factors.generateRecoveryCodes(user);
  });
  const reset = await run(['user', 'mfa-reset', '--email', 'Lost@Example.com', '--json']);
  t.equal(reset.code, 0, reset.stderr);
  t.match(JSON.parse(reset.stdout), { email: 'lost@example.com', removed: 1 });
  t.same(await withServices(async (s) => s.factors.listActive((await s.users.findUserByEmail('lost@example.com'))!.id)), [], 'no factor left');
  t.match((await run(['user', 'mfa-reset', '--email', 'nobody@example.com'])).stderr, /no user with email nobody@example.com/);
  t.equal((await run(['user', 'mfa-reset'])).code, 2, 'needs --email');
});
