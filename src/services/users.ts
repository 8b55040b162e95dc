/**
 * Creating and reading users. Emails are normalized so that "Alice@Example.com " and "alice@example.com"
 * are one account; phone numbers must be E.164.
 */
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { AppError } from '../errors/index.js';
import { createUserQueries, type UserRow } from '../queries/users.js';
import type { AuditEvent, AuditService, RequestContext } from './audit.js';
import type { PasswordHasher } from './password.js';

export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

export const emailSchema = z
  .string()
  .max(254)
  .transform(normalizeEmail)
  .pipe(z.email({ message: 'must be an email address' }));
export const phoneSchema = z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 phone number such as +15550100');
/** Minimum length per NIST SP 800-63B; the full policy (strength, breach lists) arrives with the auth API. */
export const passwordSchema = z.string().min(10, 'must be at least 10 characters').max(256, 'must be at most 256 characters');

export interface NewUserInput {
  email: string;
  name?: string | undefined;
  phone?: string | undefined;
  password?: string | undefined;
  passwordHash?: string | undefined;
  emailVerified?: boolean | undefined;
}

export function createUserService(deps: { db: Db; passwords: PasswordHasher; audit: AuditService }) {
  const queries = createUserQueries(deps.db);
  return {
    findUserById: queries.findUserById,
    // PostgreSQL text cannot hold U+0000 (the query would fail); no stored email contains one.
    findUserByEmail: async (email: string) => (email.includes('\u0000') ? undefined : queries.findUserByEmail(normalizeEmail(email))),

    async createUser(input: NewUserInput, actor: AuditEvent['actor'], context?: RequestContext): Promise<UserRow> {
      const email = emailSchema.parse(input.email);
      if (input.phone !== undefined) phoneSchema.parse(input.phone);
      let passwordHash: string | null = null;
      if (input.password !== undefined) passwordHash = await deps.passwords.hash(passwordSchema.parse(input.password));
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

    async verifyPassword(userId: string | undefined, password: string): Promise<boolean> {
      const stored = userId ? await queries.findPasswordHashByUserId(userId) : undefined;
      return deps.passwords.verify(stored, password);
    },
  };
}
export type UserService = ReturnType<typeof createUserService>;
