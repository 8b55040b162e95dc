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

/** The cost parameters of an argon2id hash (what its verification time depends on). */
export interface Argon2Cost {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const CURRENT_COST: Argon2Cost = { memoryCost: ARGON2_PARAMS.memoryCost, timeCost: ARGON2_PARAMS.timeCost, parallelism: ARGON2_PARAMS.parallelism };

/** The cost of a stored argon2id hash (PHC string), or undefined when it is not one. */
export function costOf(phc: string): Argon2Cost | undefined {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(phc);
  return match ? { memoryCost: Number(match[1]), timeCost: Number(match[2]), parallelism: Number(match[3]) } : undefined;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /**
   * Verifies against `storedHash`, or, when there is none, against a dummy hash of `dummyCost` (default: the
   * current parameters), so both take the same time.
   */
  verify(storedHash: string | undefined, password: string, dummyCost?: Argon2Cost): Promise<boolean>;
  isArgon2idHash(value: string): boolean;
  /** Whether a stored hash was made with other parameters than ARGON2_PARAMS (upgraded at the next login). */
  needsRehash(storedHash: string): boolean;
}

const CURRENT_PARAMS = `$argon2id$v=19$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=${ARGON2_PARAMS.parallelism}$`;

export function createPasswordHasher(options: { concurrency?: number } = {}): PasswordHasher {
  const limit = pLimit(options.concurrency ?? availableParallelism());
  const dummies = new Map<string, Promise<string>>();
  const dummyOf = (cost: Argon2Cost) => {
    const key = `${cost.memoryCost},${cost.timeCost},${cost.parallelism}`;
    let dummy = dummies.get(key);
    if (!dummy) dummies.set(key, (dummy = hash('keryu-dummy-password-for-timing', { algorithm: ARGON2_PARAMS.algorithm, ...cost })));
    return dummy;
  };
  return {
    hash: (password) => limit(() => hash(password.normalize('NFKC'), ARGON2_PARAMS)),
    async verify(storedHash, password, dummyCost = CURRENT_COST) {
      const target = storedHash ?? (await dummyOf(dummyCost));
      const ok = await limit(() => verify(target, password.normalize('NFKC')).catch(() => false));
      return ok && storedHash !== undefined;
    },
    needsRehash: (storedHash) => !storedHash.startsWith(CURRENT_PARAMS),
    isArgon2idHash: (value) => /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.test(value),
  };
}
