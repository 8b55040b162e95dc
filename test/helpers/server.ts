/**
 * Starts the real app on a loopback port with an isolated database. Everything a test needs to seed data
 * goes through the same services the server uses.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { parseConfig, type Config } from '../../src/config/index.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { TEST_SECRET, testServerEnv } from './defaults.js';
import { freePort } from './ports.js';

/** bench/ takes its ports from here too. */
export { freePort };

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
  // In-process: the test's database is migrated already, and the test's own output stays readable.
  const raw = parseConfig({ ...testServerEnv(port), LOG_LEVEL: 'silent', MIGRATE_ON_START: 'false', ...env });
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
