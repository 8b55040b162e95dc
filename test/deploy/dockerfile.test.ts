/**
 * The Dockerfile keeps the properties the chart and Kubernetes rely on: a current LTS Node base, a build stage
 * separate from a runtime stage with production dependencies only, a numeric non-root user (runAsNonRoot can
 * verify only a number), an exec-form CMD so SIGTERM reaches node, NODE_ENV=production, the ports exposed, and a
 * .dockerignore that lets in exactly what the COPY lines need.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseCopy, readDockerfile, repoRoot, stage, stageEnv } from './dockerfile.js';

const stages = await readDockerfile();
const runtime = stage(stages, 'runtime');
const instructions = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

t.test('stages: build compiles, deps installs production dependencies with scripts off, runtime is last', async (t) => {
  t.same(stages.map((s) => s.name), ['build', 'deps', 'runtime']);
  const runs = (name: string) => stage(stages, name).instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  t.ok(runs('build').some((r) => /^npm ci\b/.test(r)) && runs('build').includes('npm run build'), 'the build stage installs and compiles');
  const install = runs('deps').find((r) => /^npm ci\b/.test(r)) ?? '';
  t.match(install, /--omit=dev/, 'production dependencies only');
  t.match(install, /--ignore-scripts/, 'no install scripts (prepare would need tsc)');
  t.notOk(instructions('RUN').some((r) => /\bnpm (ci|install)\b/.test(r)), 'the runtime stage installs nothing itself');
  const fromStages = instructions('COPY').map(parseCopy).filter((c) => c.from !== undefined).map((c) => `${c.from}:${c.sources.join(',')}`);
  t.same(fromStages.sort(), ['build:/src/dist', 'deps:/app/node_modules'], 'only dist/ and the production node_modules come from other stages');
});

t.test('every stage runs on Node.js 22 or 24 (current LTS), slim or distroless', async (t) => {
  for (const s of stages) {
    const major = /^(?:docker\.io\/(?:library\/)?)?node:(\d+)[.-]/.exec(s.image)?.[1] ?? /distroless\/nodejs(\d+)/.exec(s.image)?.[1];
    t.ok(major === '22' || major === '24', `${s.name} (${s.image}) is Node 22 or 24`);
    t.match(s.image, /slim|distroless/, `${s.name} uses a small base image`);
  }
});

t.test('runtime: numeric non-root user, exec-form CMD, production mode, ports', async (t) => {
  const users = instructions('USER');
  t.equal(users.length, 1, 'one USER line');
  const [uid, gid] = (users[0] ?? '').split(':');
  t.match(uid, /^\d+$/, 'the user is numeric');
  t.match(gid, /^\d+$/, 'the group is numeric');
  t.ok(Number(uid) > 0 && Number(gid) > 0, 'neither is root');
  const user = runtime.instructions.findIndex((i) => i.keyword === 'USER');
  t.ok(runtime.instructions.slice(user + 1).every((i) => i.keyword !== 'RUN' && i.keyword !== 'COPY'), 'nothing is run or copied after switching user');

  const cmd = instructions('CMD');
  t.equal(cmd.length, 1, 'one CMD');
  t.same(JSON.parse(cmd[0] ?? 'null'), ['node', 'dist/server.js'], 'exec form: node is PID 1 and gets SIGTERM');
  t.same(runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT'), [], 'no ENTRYPOINT wraps it');

  const env = stageEnv(runtime);
  t.equal(env.NODE_ENV, 'production');
  t.match(env.DATA_DIR, /^\/tmp\//, 'the embedded database (if used) is written below /tmp');
  t.match(env.HOME, /^\/tmp/, 'HOME is writable with a read-only root filesystem');
  const ports = instructions('EXPOSE').flatMap((e) => e.split(/\s+/));
  t.same(ports.sort(), [env.PORT, env.METRICS_PORT].sort(), 'the HTTP and metrics ports are exposed');
  t.same([env.PORT, env.METRICS_PORT], ['3000', '9464']);
});

t.test('the keryu CLI is on PATH in the image', async (t) => {
  const link = instructions('RUN').find((r) => /ln -s \S+ \/usr\/local\/bin\/keryu$/.test(r));
  t.ok(link, 'a keryu symlink is created');
  const target = /ln -s (\S+)/.exec(link ?? '')?.[1] ?? '';
  const workdir = runtime.instructions.find((i) => i.keyword === 'WORKDIR')?.args ?? '';
  t.ok(target.startsWith(`${workdir}/`), 'it points into the application directory');
  const copied = instructions('COPY').map(parseCopy).filter((c) => c.from === undefined).flatMap((c) => c.sources);
  t.ok(copied.includes('bin'), 'bin/ is copied');
  t.match(readFileSync(join(repoRoot, target.slice(workdir.length + 1)), 'utf8'), /^#!\/usr\/bin\/env node/, 'the target is the node CLI');
});

t.test('.dockerignore lets in exactly the sources the COPY lines name', async (t) => {
  const rules = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  t.equal(rules[0], '**', 'everything is excluded unless listed (no .env, data/ or node_modules reaches the build)');
  const allowed = rules.slice(1).map((r) => r.replace(/^!/, '').replace(/\/\*\*$/, ''));
  const contextSources = stages
    .flatMap((s) => s.instructions.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args)))
    .filter((c) => c.from === undefined)
    .flatMap((c) => c.sources);
  for (const source of new Set(contextSources)) {
    t.ok(allowed.some((a) => source === a || source.startsWith(`${a}/`)), `${source} is let in`);
  }
  for (const a of allowed) t.ok(contextSources.some((s) => s === a || s.startsWith(`${a}/`) || a.startsWith(`${s}/`)), `${a} is used`);
});
