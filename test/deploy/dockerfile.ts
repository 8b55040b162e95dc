/**
 * Reads the top-level Dockerfile and rebuilds its runtime stage's file tree without a container engine, so the
 * tests check the very file a real `docker build` uses (they cannot drift apart).
 *
 * Only the instructions this Dockerfile uses are understood (FROM ... AS, WORKDIR, COPY [--from], RUN, ENV,
 * USER, EXPOSE, CMD); anything else fails loudly rather than being skipped.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface Instruction {
  keyword: string;
  /** The text after the keyword, continuation lines joined. */
  args: string;
}

export interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

export interface Copy {
  from: string | undefined;
  sources: string[];
  destination: string;
}

const KNOWN = new Set(['FROM', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'EXPOSE', 'CMD']);

export async function readDockerfile(path = join(repoRoot, 'Dockerfile')): Promise<Stage[]> {
  const text = await readFile(path, 'utf8');
  const logical: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) || (!pending && !line.trim())) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(`${pending}${line.trim()}`);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const entry of logical) {
    const match = /^(\S+)\s+(.*)$/.exec(entry);
    if (!match?.[1] || match[2] === undefined) throw new Error(`unparsable Dockerfile line: ${entry}`);
    const keyword = match[1].toUpperCase();
    if (!KNOWN.has(keyword)) throw new Error(`Dockerfile instruction ${keyword} is not understood by test/deploy/dockerfile.ts`);
    if (keyword === 'FROM') {
      const from = /^(\S+)\s+AS\s+(\S+)$/i.exec(match[2]);
      if (!from?.[1] || !from[2]) throw new Error(`every stage needs a name (FROM image AS name): ${entry}`);
      stages.push({ image: from[1], name: from[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${keyword} before FROM`);
    stage.instructions.push({ keyword, args: match[2] });
  }
  return stages;
}

export function stage(stages: Stage[], name: string): Stage {
  const found = stages.find((s) => s.name === name);
  if (!found) throw new Error(`no stage ${name} in the Dockerfile`);
  return found;
}

export function parseCopy(args: string): Copy {
  const words = args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift() as string;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
    else throw new Error(`COPY flag ${flag} is not understood`);
  }
  const destination = words.pop();
  if (!destination || words.length === 0) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { from, sources: words, destination };
}

/** `ENV A=1 B=2` lines of a stage, in order. */
export function stageEnv(s: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { keyword, args } of s.instructions) {
    if (keyword !== 'ENV') continue;
    for (const pair of args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`ENV must use KEY=value: ${args}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** An emulated image file system: absolute image paths map below `root`. */
interface Fs {
  root: string;
  workdir: string;
}

const inFs = (fs: Fs, imagePath: string) => join(fs.root, posix.resolve(fs.workdir, imagePath));

async function copyInto(fs: Fs, sourceRoot: (path: string) => string, copy: Copy): Promise<void> {
  const destinationIsDir = copy.destination.endsWith('/') || copy.sources.length > 1;
  for (const source of copy.sources) {
    const target = destinationIsDir ? join(inFs(fs, copy.destination), posix.basename(source)) : inFs(fs, copy.destination);
    await mkdir(dirname(target), { recursive: true });
    await cp(sourceRoot(source), target, { recursive: true, errorOnExist: false });
  }
}

const run = promisify(execFile);

export interface RuntimeTree {
  /** Where the runtime stage's WORKDIR is on this machine: run `node dist/server.js` here. */
  appDir: string;
  env: Record<string, string>;
  stages: Stage[];
}

/**
 * Rebuilds the runtime stage in a scratch directory outside the repository (so Node cannot resolve a module
 * from the repository's node_modules). Files copied from the `build` stage are taken from this checkout, which
 * must be built (`npm run build`: the build stage runs the same); every other stage is replayed, its RUN lines
 * executed in its own scratch root (the `deps` stage's production-only `npm ci`). RUN lines of the runtime stage
 * itself only touch the base image (a symlink) and are not replayed.
 */
export async function buildRuntimeTree(runtimeName = 'runtime'): Promise<RuntimeTree> {
  const stages = await readDockerfile();
  const scratch = await mkdtemp(join(tmpdir(), 'keryu-image-'));
  const built = new Map<string, Fs>();
  const contextRoot = (path: string) => join(repoRoot, path);

  const replay = async (s: Stage, runCommands: boolean): Promise<Fs> => {
    const fs: Fs = { root: join(scratch, s.name), workdir: '/' };
    await mkdir(fs.root, { recursive: true });
    for (const { keyword, args } of s.instructions) {
      if (keyword === 'WORKDIR') {
        fs.workdir = posix.resolve(fs.workdir, args);
        await mkdir(inFs(fs, '.'), { recursive: true });
      } else if (keyword === 'COPY') {
        const copy = parseCopy(args);
        await copyInto(fs, copy.from === undefined ? contextRoot : await stageRoot(copy.from), copy);
      } else if (keyword === 'RUN' && runCommands) {
        await run('sh', ['-c', args], { cwd: inFs(fs, '.'), env: { ...process.env, npm_config_prefer_offline: 'true' }, maxBuffer: 16 * 1024 * 1024 });
      }
    }
    return fs;
  };

  const stageRoot = async (name: string): Promise<(path: string) => string> => {
    const s = stage(stages, name);
    if (name === 'build') {
      // The build stage's WORKDIR holds this checkout (its COPY lines bring package files and src/).
      const workdir = s.instructions.find((i) => i.keyword === 'WORKDIR')?.args ?? '/';
      return (path) => join(repoRoot, posix.relative(workdir, posix.resolve(workdir, path)));
    }
    let fs = built.get(name);
    if (!fs) {
      fs = await replay(s, true);
      built.set(name, fs);
    }
    const done = fs;
    return (path) => inFs(done, path);
  };

  const runtime = stage(stages, runtimeName);
  const fs = await replay(runtime, false);
  return { appDir: inFs(fs, '.'), env: stageEnv(runtime), stages };
}
