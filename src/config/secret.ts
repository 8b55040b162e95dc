/**
 * Resolves the root secret. An explicit KERYU_SECRET always wins; outside production a random secret is
 * generated once and kept in DATA_DIR so that cookies, client secrets and encrypted keys survive restarts.
 * Production without KERYU_SECRET is refused earlier, by parseConfig.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, RawConfig } from './index.js';

export interface SecretWarning {
  warn(message: string): void;
}

export async function resolveSecret(raw: RawConfig, log: SecretWarning): Promise<Config> {
  if (raw.secret) return Object.freeze({ ...raw, secret: raw.secret });
  const file = join(raw.dataDir, 'keryu-secret');
  let secret: string;
  try {
    secret = (await readFile(file, 'utf8')).trim();
  } catch {
    secret = randomBytes(32).toString('base64url');
    await mkdir(raw.dataDir, { recursive: true });
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async () => {
      // Another process created it first: use theirs.
      secret = (await readFile(file, 'utf8')).trim();
    });
  }
  log.warn(
    `KERYU_SECRET is not set: using a development secret kept in ${file}. ` +
      'Set KERYU_SECRET (the same value on every replica) before running more than one replica or in production.',
  );
  return Object.freeze({ ...raw, secret });
}

/** Whether the service runs on the generated development secret (KERYU_SECRET unset): the compliance report asks. */
export async function usesDevelopmentSecret(config: Pick<Config, 'secret' | 'dataDir'>): Promise<boolean> {
  try {
    return (await readFile(join(config.dataDir, 'keryu-secret'), 'utf8')).trim() === config.secret;
  } catch {
    return false;
  }
}
