/**
 * Creating and reading users. Emails are normalized so that "Alice@Example.com " and "alice@example.com"
 * are one account; phone numbers must be E.164.
 */
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { AppError } from '../errors/index.js';
import { createUserQueries, type UserRow } from '../queries/users.js';

/** A user as services answer it (no password hash). */
export type { UserRow } from '../queries/users.js';
import type { AuditEvent, AuditService } from './audit.js';
import type { RequestContext } from '../lib/request-context.js';
import { hmacDigest } from '../lib/crypto.js';
import { costOf, CURRENT_COST, type Argon2Cost, type PasswordHasher } from './password.js';
import type { PasswordPolicy } from './password-policy.js';

export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

export const emailSchema = z
  .string()
  .max(254)
  .transform(normalizeEmail)
  .pipe(z.email({ message: 'must be an email address' }));
export const phoneSchema = z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 phone number such as +15550100');
/** Shape only (bounded input); the policy (length, strength) is PasswordPolicy's, applied wherever a password is set. */
export const passwordSchema = z.string().min(1, 'must not be empty').max(1024, 'is too long');

export interface NewUserInput {
  email: string;
  name?: string | undefined;
  phone?: string | undefined;
  password?: string | undefined;
  passwordHash?: string | undefined;
  emailVerified?: boolean | undefined;
}

/** How long the accounts' hash costs are reused for unknown accounts (their mix changes only as imported hashes are upgraded). */
const COST_MIX_TTL_MS = 5 * 60_000;

export function createUserService(deps: {
  db: Db;
  passwords: PasswordHasher;
  audit: AuditService;
  policy: PasswordPolicy;
  /** Picks an unknown identifier's dummy-hash cost; without it, the current parameters. */
  dummyCostKey?: Buffer | undefined;
}) {
  const queries = createUserQueries(deps.db);
  let costMix: { at: number; costs: Promise<Array<{ cost: Argon2Cost; accounts: number }>> } | undefined;

  /**
   * The argon2 cost an unknown identifier's password is checked with: that of a real account, picked by a
   * keyed digest of the identifier, in proportion to how many accounts have each cost. Accounts imported
   * with other parameters keep their hash (it cannot be redone without the password) until their first
   * sign-in; if unknown identifiers were always checked at today's cost, their verification time would tell
   * an imported account from a missing one. The pick is fixed per identifier (repeating a probe shows
   * nothing) and unpredictable without the server's key.
   */
  async function dummyCostFor(identifier: string): Promise<Argon2Cost> {
    if (!deps.dummyCostKey) return CURRENT_COST;
    if (!costMix || Date.now() - costMix.at > COST_MIX_TTL_MS) {
      const costs = queries.countPasswordHashCosts().then((rows) =>
        rows.flatMap((r) => {
          const cost = costOf(`$argon2id$v=19$${r.cost}$`);
          return cost ? [{ cost, accounts: r.accounts }] : [];
        }).sort((a, b) => a.cost.memoryCost - b.cost.memoryCost || a.cost.timeCost - b.cost.timeCost || a.cost.parallelism - b.cost.parallelism),
      );
      costMix = { at: Date.now(), costs };
      costs.catch(() => (costMix = undefined));
    }
    const costs = await costMix.costs;
    const total = costs.reduce((sum, c) => sum + c.accounts, 0);
    if (!total) return CURRENT_COST;
    let pick = Buffer.from(hmacDigest(deps.dummyCostKey, normalizeEmail(identifier)), 'base64url').readUIntBE(0, 6) % total;
    for (const c of costs) {
      if (pick < c.accounts) return c.cost;
      pick -= c.accounts;
    }
    return CURRENT_COST;
  }
  return {
    dummyCostFor,
    findUserById: queries.findUserById,
    // PostgreSQL text cannot hold U+0000 (the query would fail); no stored email contains one.
    findUserByEmail: async (email: string) => (email.includes('\u0000') ? undefined : queries.findUserByEmail(normalizeEmail(email))),

    async createUser(input: NewUserInput, actor: AuditEvent['actor'], context?: RequestContext): Promise<UserRow> {
      const email = emailSchema.parse(input.email);
      if (input.phone !== undefined) phoneSchema.parse(input.phone);
      let passwordHash: string | null = null;
      if (input.password !== undefined) {
        passwordHash = await deps.passwords.hash(await deps.policy.check(passwordSchema.parse(input.password), { email, name: input.name }));
      }
      else if (input.passwordHash !== undefined) {
        if (!deps.passwords.isArgon2idHash(input.passwordHash)) throw new AppError('invalid_request', 'password_hash must be an argon2id hash');
        passwordHash = input.passwordHash;
      }
      if (await queries.findUserByEmail(email)) throw new AppError('conflict', 'a user with this email already exists', 409);
      const user = await queries.insertUser({
        email,
        name: input.name ?? null,
        phone: input.phone ?? null,
        passwordHash,
        emailVerified: input.emailVerified ?? false,
      });
      await deps.audit.record({ type: 'user.created', outcome: 'success', actor, subject: { type: 'user', id: user.id }, context, details: { email } });
      return user;
    },

    /** The user's own profile change (the account pages' name form): audited as `user.updated` by the user. */
    async updateOwnName(user: Pick<UserRow, 'id' | 'name'>, name: string, context?: RequestContext): Promise<void> {
      const trimmed = name.trim();
      if (trimmed === (user.name ?? '')) return;
      await queries.updateUser(user.id, { name: trimmed === '' ? null : trimmed });
      await deps.audit.record({ type: 'user.updated', outcome: 'success', actor: { type: 'user', id: user.id }, subject: { type: 'user', id: user.id }, context, details: { changed: ['name'] } });
    },

    /**
     * A login's first factor in one lookup: the account (if any) and whether the password is right, verified
     * against a dummy hash when there is no account so both take the same time; re-hashes on success when
     * the parameters changed.
     */
    async checkLogin(email: string, password: string): Promise<{ user: UserRow | undefined; ok: boolean }> {
      const candidate = email.includes('\u0000') ? undefined : await queries.findLoginCandidateByEmail(normalizeEmail(email));
      const stored = candidate?.passwordHash ?? undefined;
      const ok = await deps.passwords.verify(stored, password, stored ? undefined : await dummyCostFor(email));
      if (ok && candidate && stored && deps.passwords.needsRehash(stored)) {
        await queries.updateUser(candidate.id, { passwordHash: await deps.passwords.hash(password) });
      }
      if (!candidate) return { user: undefined, ok: false };
      const { passwordHash: _hash, ...user } = candidate;
      return { user, ok };
    },

    /**
     * Verifies a password (against a dummy hash when there is no account, so both take the same time) and,
     * when it is right but was hashed with other parameters than today's, stores a fresh hash.
     */
    async verifyPassword(userId: string | undefined, password: string): Promise<boolean> {
      const stored = userId ? await queries.findPasswordHashByUserId(userId) : undefined;
      const ok = await deps.passwords.verify(stored, password);
      if (ok && userId && stored && deps.passwords.needsRehash(stored)) {
        await queries.updateUser(userId, { passwordHash: await deps.passwords.hash(password) });
      }
      return ok;
    },

    /** Returns the normalized password when the policy accepts it for this user; throws `weak_password` otherwise. */
    checkPasswordPolicy(user: Pick<UserRow, 'email' | 'name'>, password: string): Promise<string> {
      return deps.policy.check(password, { email: user.email, name: user.name });
    },

    /** Sets a new password after the policy accepts it (reset, change). */
    async setPassword(user: Pick<UserRow, 'id' | 'email' | 'name'>, password: string): Promise<void> {
      const normalized = await deps.policy.check(password, { email: user.email, name: user.name });
      await queries.updateUser(user.id, { passwordHash: await deps.passwords.hash(normalized), passwordResetRequired: false });
    },
  };
}
export type UserService = ReturnType<typeof createUserService>;
