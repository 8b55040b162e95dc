/**
 * Runs the server as a separate OS process (a second replica), sharing a PostgreSQL database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, TEST_SECRET } from './server.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  origin: string;
  issuer: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `src/server.ts` under tsx. `issuer` lets replicas share one issuer while listening on their own port. */
export async function startServerProcess(options: { databaseUrl: string; issuer?: string; env?: Record<string, string> }): Promise<ServerProcess> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const issuer = options.issuer ?? `${origin}/oidc`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      ISSUER: issuer,
      DATABASE_URL: options.databaseUrl,
      KERYU_SECRET: TEST_SECRET,
      LOG_LEVEL: 'warn',
      KEY_REFRESH_INTERVAL: '1',
      // As in startServer: the new-device and new-IP checks are off unless a test turns them on.
      DEVICE_VERIFICATION: 'off',
      IP_VERIFICATION: 'off',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server process exited early:\n${log}`);
    try {
      const res = await fetch(`${origin}/readyz`);
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
