/**
 * Summarises a V8 .cpuprofile: `npx tsx bench/cpuprofile-top.ts FILE [TOP]`.
 * (`BENCH_CPU_PROF=1 npm run bench` writes one for keryu-auth and prints this summary itself.)
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { formatProfileSummary, summarizeProfile, type CpuProfile } from './lib/cpuprofile.js';

const [file, top] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: tsx bench/cpuprofile-top.ts FILE.cpuprofile [TOP]\n');
  process.exit(2);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
const n = top ? Number(top) : 25;
process.stdout.write(`${formatProfileSummary(file, summarizeProfile(profile, root, Math.max(n, 30)), n)}\n`);
