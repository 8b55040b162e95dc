/**
 * The one source of test defaults: the shared secret, the test password, and the environment every test
 * server starts with, whether it runs in the test's process (server.ts), as an OS process (process.ts) or
 * as the CLI (replicas.ts). A default changed here changes for all three, so they cannot drift apart.
 */

/** A fixed secret so that separate processes in one test share cookies, digests and key encryption. */
export const TEST_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';

/** The password of every seeded test user (long enough for the default password policy). */
export const TEST_PASSWORD = 'correct horse battery staple';

/**
 * What a test server is configured with, listening on 127.0.0.1:`port` with its issuer there. Callers add
 * what differs by how the server runs (log level, migrations, database, metrics port) and the test's own
 * `env` last.
 */
export function testServerEnv(port: number): Record<string, string> {
  return {
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}/oidc`,
    KERYU_SECRET: TEST_SECRET,
    // Replicas pick up a rotated signing key within a second.
    KEY_REFRESH_INTERVAL: '1',
    // New-device and new-IP checks are on by default (challenge / notify); tests of other features sign in
    // without them, the MFA tests turn them on explicitly.
    DEVICE_VERIFICATION: 'off',
    IP_VERIFICATION: 'off',
    // Tests stop servers at once; the shutdown test sets its own delay.
    SHUTDOWN_DELAY: '0',
  };
}

/** The environment a replica's operator would give `keryu`: the same database and root secret as the servers. */
export function testCliEnv(databaseUrl: string): Record<string, string> {
  return { NODE_ENV: 'test', DATABASE_URL: databaseUrl, KERYU_SECRET: TEST_SECRET, LOG_LEVEL: 'silent' };
}
