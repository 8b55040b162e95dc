/**
 * Further sign-in steps after the password (MFA). Each method is a strategy behind one interface, kept
 * in a registry, so a new factor is one more file that calls `register`. A password login whose user
 * has at least one configured method does not get tokens: it gets a challenge (POST /api/auth/verify/
 * completes it). This issue defines the step; the MFA issue adds the methods.
 */
import type { UserRow } from '../queries/users.js';

export interface AuthMethod {
  /** The `method` value clients send. */
  readonly id: string;
  /** The RFC 8176 `amr` value a success adds. */
  readonly amr: string;
  isConfiguredFor(user: UserRow): Promise<boolean>;
  /** Sends or prepares the challenge (e.g. an SMS); returns state kept server-side with the challenge. */
  challenge?(user: UserRow): Promise<Record<string, unknown> | undefined>;
  verify(user: UserRow, code: string, state: Record<string, unknown>): Promise<boolean>;
}

export function createAuthMethodRegistry() {
  const methods = new Map<string, AuthMethod>();
  return {
    register(method: AuthMethod): void {
      methods.set(method.id, method);
    },
    get(id: string): AuthMethod | undefined {
      return methods.get(id);
    },
    async configuredFor(user: UserRow): Promise<AuthMethod[]> {
      const out: AuthMethod[] = [];
      for (const method of methods.values()) if (await method.isConfiguredFor(user)) out.push(method);
      return out;
    },
  };
}
export type AuthMethodRegistry = ReturnType<typeof createAuthMethodRegistry>;
