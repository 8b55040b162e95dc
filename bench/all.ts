/**
 * `npm run bench` (`-- --smoke` for CI): the three bench programs one after another, each in its own process
 * with the same arguments; every one runs even when an earlier one failed, and the exit status is the first
 * non-zero one (1: a scenario had non-2xx answers, 2: a bench program itself failed).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const PROGRAMS = ['bench/run.ts', 'bench/auth.ts', 'bench/decisions.ts'];
const args = process.argv.slice(2);

function runProgram(file: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { cwd: root, stdio: 'inherit' });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 2 : 0)));
  });
}

const outcomes: Array<{ file: string; code: number }> = [];
for (const file of PROGRAMS) {
  process.stdout.write(`\n=== ${file} ${args.join(' ')}\n`);
  outcomes.push({ file, code: await runProgram(file) });
}
process.stdout.write(`\n=== bench: ${outcomes.map((o) => `${o.file} ${o.code === 0 ? 'ok' : `FAILED (exit ${o.code})`}`).join(', ')}\n`);
process.exitCode = outcomes.find((o) => o.code !== 0)?.code ?? 0;
