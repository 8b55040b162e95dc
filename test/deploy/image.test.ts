/**
 * The container image's runtime tree works on its own: rebuilt from the Dockerfile's COPY lines with a
 * production-only, scripts-off install (test/deploy/dockerfile.ts), it migrates an empty PostgreSQL database with
 * `keryu migrate` and then serves discovery under NODE_ENV=production as the chart runs it (migrations off at
 * start). A runtime dependency listed under devDependencies, or a file the server reads that the Dockerfile
 * does not copy, fails here; so does a write into the tree (the image runs with a read-only root filesystem).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import t from 'tap';
import { onPostgres } from '../helpers/db.js';
import { TEST_SECRET } from '../helpers/defaults.js';
import { freePort } from '../helpers/ports.js';
import { createEmptyDatabase, waitFor } from '../helpers/replicas.js';
import { buildRuntimeTree, type RuntimeTree } from './dockerfile.js';

const SKIP = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL)';
const ISSUER = 'https://auth.example.test/oidc';

/** Every file below `dir` with its modification time, to prove the process wrote nothing there. */
async function snapshot(dir: string): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path), (await stat(path)).mtimeMs);
  }
  return files;
}

/** The environment of a container from this image: the image's ENV plus what the chart's ConfigMap and Secret set. */
function containerEnv(tree: RuntimeTree, extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...tree.env, KERYU_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', ...extra };
}

function runNode(args: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, output: () => output };
}

t.test('the runtime tree migrates with keryu and serves discovery in production', { skip: SKIP, timeout: 300_000 }, async (t) => {
  const tree = await buildRuntimeTree();
  t.teardown(() => rm(join(tree.appDir, '..', '..'), { recursive: true, force: true }));
  t.equal(tree.env.NODE_ENV, 'production', 'the image sets NODE_ENV=production');
  t.ok(existsSync(join(tree.appDir, 'node_modules', 'fastify')), 'production dependencies are installed');
  t.notOk(existsSync(join(tree.appDir, 'node_modules', 'typescript')), 'dev dependencies are not');
  t.notOk(existsSync(join(tree.appDir, 'src', 'app.ts')), 'no TypeScript sources ship');

  const db = await createEmptyDatabase();
  t.teardown(() => db.drop());
  const before = await snapshot(tree.appDir);

  const migrate = runNode(['bin/keryu.js', 'migrate'], tree.appDir, containerEnv(tree, { DATABASE_URL: db.url }));
  t.equal(await migrate.exit, 0, `keryu migrate succeeds: ${migrate.output()}`);
  t.match(migrate.output(), /migrations applied/);

  const port = await freePort();
  const server = runNode(
    ['dist/server.js'],
    tree.appDir,
    containerEnv(tree, {
      PORT: String(port),
      HOST: '127.0.0.1',
      METRICS_PORT: '0',
      DATABASE_URL: db.url,
      ISSUER,
      // Behind the ingress: TLS ends at the proxy, which says so in X-Forwarded-Proto.
      TRUST_PROXY: 'loopback',
      MIGRATE_ON_START: 'false',
    }),
  );
  t.teardown(async () => {
    if (server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exit;
    }
  });
  const discovery = await waitFor(
    async () => {
      if (server.child.exitCode !== null) throw new Error(`server exited: ${server.output()}`);
      const res = await fetch(`http://127.0.0.1:${port}/oidc/.well-known/openid-configuration`, {
        headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'auth.example.test' },
      }).catch(() => undefined);
      return res?.ok ? ((await res.json()) as { issuer: string; token_endpoint: string }) : undefined;
    },
    60_000,
    'discovery from the runtime tree',
    200,
  );
  t.equal(discovery.issuer, ISSUER);
  t.equal(discovery.token_endpoint, `${ISSUER}/token`);
  const login = await fetch(`http://127.0.0.1:${port}/oidc/auth?client_id=none&response_type=code&scope=openid`, {
    headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'auth.example.test' },
  });
  t.equal(login.status, 400, 'an error page renders from the shipped templates');
  t.match(await login.text(), /<html/i);

  server.child.kill('SIGTERM');
  t.equal(await server.exit, 0, 'SIGTERM stops the server cleanly');
  t.same([...(await snapshot(tree.appDir))].filter(([path, mtime]) => before.get(path) !== mtime), [], 'nothing was written into the tree');
});
