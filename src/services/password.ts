/**
 * Password hashing with argon2id at OWASP's parameters (19 MiB, 2 iterations, 1 lane). Hashes run on a
 * bounded queue (one per core) so a burst of logins costs latency, not memory or a stalled event loop.
 * @see https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
 */
import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';

/** `algorithm: 2` is Algorithm.Argon2id (a const enum the binding's types cannot export under verbatimModuleSyntax). */
export const ARGON2_PARAMS = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Verifies against `storedHash`, or against a dummy hash when there is none, so both take the same time. */
  verify(storedHash: string | undefined, password: string): Promise<boolean>;
  isArgon2idHash(value: string): boolean;
  /** Whether a stored hash was made with other parameters than ARGON2_PARAMS (upgraded at the next login). */
  needsRehash(storedHash: string): boolean;
}

const CURRENT_PARAMS = `$argon2id$v=19$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=${ARGON2_PARAMS.parallelism}$`;

export function createPasswordHasher(options: { concurrency?: number } = {}): PasswordHasher {
  const limit = pLimit(options.concurrency ?? availableParallelism());
  let dummy: Promise<string> | undefined;
  return {
    hash: (password) => limit(() => hash(password.normalize('NFKC'), ARGON2_PARAMS)),
    async verify(storedHash, password) {
      dummy ??= hash('keryu-dummy-password-for-timing', ARGON2_PARAMS);
      const target = storedHash ?? (await dummy);
      const ok = await limit(() => verify(target, password.normalize('NFKC')).catch(() => false));
      return ok && storedHash !== undefined;
    },
    needsRehash: (storedHash) => !storedHash.startsWith(CURRENT_PARAMS),
    isArgon2idHash: (value) => /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(value),
  };
}
