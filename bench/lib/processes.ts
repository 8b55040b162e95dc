/** Child processes for the bench: start, wait until ready, stop (SIGTERM, then SIGKILL), never leak. */
import { spawn, type ChildProcess } from 'node:child_process';

export { freePort } from '../../test/helpers/server.js';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ManagedProcess>();

/** Last resort on exit: whatever is still running is killed synchronously. */
process.on('exit', () => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
});

export async function startProcess(options: {
  name: string;
  args: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  /** GET this URL until it answers 2xx. */
  readyUrl: string;
  timeoutMs?: number;
}): Promise<ManagedProcess> {
  const child = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: Buffer) => {
    log += d.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const managed: ManagedProcess = {
    name: options.name,
    child,
    output: () => log,
    async stop(graceMs = 10_000) {
      running.delete(managed);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(managed);

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      running.delete(managed);
      throw new Error(`${options.name} exited early (${child.exitCode ?? child.signalCode}):\n${log}`);
    }
    try {
      const res = await fetch(options.readyUrl);
      await res.arrayBuffer();
      if (res.ok) return managed;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await managed.stop(0);
      throw new Error(`${options.name} did not become ready at ${options.readyUrl}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
