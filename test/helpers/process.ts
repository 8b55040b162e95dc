/**
 * Runs the server as a separate OS process (a second replica), sharing a PostgreSQL database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testServerEnv } from './defaults.js';
import { freePort } from './ports.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  origin: string;
  /** Where its Prometheus metrics are served (METRICS_PORT, a free port unless the test sets one). */
  metricsOrigin: string;
  issuer: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `src/server.ts` under tsx. `issuer` lets replicas share one issuer while listening on their own port.
 * Returns once `/readyz` answers 200, or with `until: 'live'` once `/healthz` does (a replica that is up but
 * not ready, e.g. waiting for its schema).
 */
export async function startServerProcess(options: { databaseUrl: string; issuer?: string; env?: Record<string, string>; until?: 'ready' | 'live' }): Promise<ServerProcess> {
  const port = await freePort();
  const metricsPort = options.env?.METRICS_PORT ?? String(await freePort());
  const origin = `http://127.0.0.1:${port}`;
  const issuer = options.issuer ?? `${origin}/oidc`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      ...testServerEnv(port),
      ISSUER: issuer,
      DATABASE_URL: options.databaseUrl,
      // A replica's warnings and errors are kept (output()) to explain a failed start.
      LOG_LEVEL: 'warn',
      ...options.env,
      METRICS_PORT: metricsPort,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  // Generous: on a busy machine (concurrent test files, tsx compiling the app) a start can take 20 s and more.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server process exited early:\n${log}`);
    try {
      const res = await fetch(`${origin}${options.until === 'live' ? '/healthz' : '/readyz'}`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server process did not become ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    origin,
    metricsOrigin: `http://127.0.0.1:${metricsPort}`,
    issuer,
    child,
    output: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
