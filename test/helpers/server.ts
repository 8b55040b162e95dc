/**
 * Starts the real app on a loopback port with an isolated database. Everything a test needs to seed data
 * goes through the same services the server uses.
 */
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/index.js';
import { createTestDatabase, type TestDatabase } from './db.js';

/** A fixed secret so that separate processes in one test share cookies, digests and key encryption. */
export const TEST_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface TestServer {
  app: FastifyInstance;
  config: Config;
  db: TestDatabase;
  /** http://127.0.0.1:PORT */
  origin: string;
  issuer: string;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Share a database (e.g. two servers); by default a new one is created and dropped with the server. */
  db?: TestDatabase;
  /** The services' time source (tests move it forward instead of sleeping). */
  clock?: () => Date;
}

export function testConfig(port: number, env: Record<string, string> = {}): Config {
  const raw = parseConfig({
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}/oidc`,
    KERYU_SECRET: TEST_SECRET,
    LOG_LEVEL: 'silent',
    MIGRATE_ON_START: 'false',
    KEY_REFRESH_INTERVAL: '1',
    // New-device and new-IP checks are on by default (challenge / notify); tests of other features sign in
    // without them, the MFA tests turn them on explicitly.
    DEVICE_VERIFICATION: 'off',
    IP_VERIFICATION: 'off',
    ...env,
  });
  return Object.freeze({ ...raw, secret: raw.secret ?? TEST_SECRET });
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const db = options.db ?? (await createTestDatabase());
  const port = await freePort();
  const config = testConfig(port, options.env);
  const app = await buildApp(config, { database: db.database, logger: false, clock: options.clock });
  await app.listen({ port, host: '127.0.0.1' });
  const origin = `http://127.0.0.1:${port}`;
  return {
    app,
    config,
    db,
    origin,
    issuer: config.issuer,
    async close() {
      await app.close();
      if (!options.db) await db.drop();
    },
  };
}
