/**
 * Start-up failures an operator can cause end the process with a non-zero code and one line on stderr naming
 * the cause and the setting, without a stack trace: a KERYU_SECRET other than the one the stored signing
 * keys were encrypted with, an unreachable database, a user the database refuses. (A schema that is not
 * current with MIGRATE_ON_START=false waits, unready, by design: migrate.test.ts.)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { createClusterDatabase, postgresBinaries, startPostgresCluster } from '../helpers/fault-servers.js';
import { startServerProcess } from '../helpers/process.js';
import { TEST_SECRET } from '../helpers/defaults.js';
import { freePort } from '../helpers/ports.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = postgresBinaries();

/** Starts the server and waits for it to exit (it must, within the bound). */
async function startFailing(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', ISSUER: `http://127.0.0.1:${port}/oidc`, LOG_LEVEL: 'warn', METRICS_PORT: String(await freePort()), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  // Runtime warnings (an unsupported Node version) are not ours.
  return { code, stderr: stderr.split('\n').filter((l) => l.startsWith('keryu-auth')).join('\n') };
}

function oneClearLine(t: Test, result: { code: number | null; stderr: string }, expected: RegExp, what: string) {
  t.not(result.code, 0, `${what}: non-zero exit`);
  t.not(result.code, null, `${what}: it exits (no hang)`);
  t.match(result.stderr, expected, `${what}: the line names the cause and the setting`);
  t.equal(result.stderr.trim().split('\n').length, 1, `${what}: one line`);
}

t.test('an unreachable database', async (t) => {
  const closed = await freePort();
  const result = await startFailing({ DATABASE_URL: `postgres://keryu:secret@127.0.0.1:${closed}/keryu`, KERYU_SECRET: TEST_SECRET, MIGRATE_ON_START: 'true' });
  oneClearLine(t, result, new RegExp(`cannot reach the database at 127\\.0\\.0\\.1:${closed}/keryu .*DATABASE_URL`), 'unreachable');
  t.notMatch(result.stderr, /secret@/, 'the password in DATABASE_URL is not printed');
});

t.test('a cluster of our own: refused user, foreign KERYU_SECRET', { skip: bin ? false : 'needs the PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql)' }, async (t) => {
  const cluster = await startPostgresCluster(bin!);
  t.teardown(() => cluster.remove());
  const url = await createClusterDatabase(cluster, `keryu_startup_${randomBytes(4).toString('hex')}`);

  const refused = await startFailing({ DATABASE_URL: url.replace('postgres@', 'nobody@'), KERYU_SECRET: TEST_SECRET });
  oneClearLine(t, refused, /the database at .* refused the user or password in DATABASE_URL/, 'refused user');

  // A replica creates and stores the signing keys under the shared secret...
  const first = await startServerProcess({ databaseUrl: url });
  await first.stop();
  // ...and one started with another secret cannot use them.
  const foreign = await startFailing({ DATABASE_URL: url, KERYU_SECRET: `another-${TEST_SECRET}` });
  oneClearLine(t, foreign, /the signing keys in the database were encrypted with another KERYU_SECRET; use the one every replica shares/, 'foreign secret');
  t.notMatch(foreign.stderr, /Unsupported state/, 'not the cipher library\'s words');
});
