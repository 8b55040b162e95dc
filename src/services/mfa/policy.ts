/**
 * The "MFA is required" rule, written once: a user must sign in with a second factor when MFA_REQUIRED is
 * set, when one of their roles requires it, or when they have an active factor (other than recovery codes).
 * The login plans its steps by it; the provider's interaction policy (oidc/provider.ts) re-checks an SSO
 * session by it at every authorization, so a session from before a factor or a role asks for the login again.
 */
import type { Db } from '../../db/client.js';
import { createMfaQueries } from '../../queries/mfa.js';

export function createMfaPolicy(deps: {
  db: Db;
  /** MFA_REQUIRED: every user must have a factor. */
  requiredForAll: boolean;
  /** Whether one of the user's roles requires MFA. */
  roleRequiresMfa(userId: string): Promise<boolean>;
}) {
  const queries = createMfaQueries(deps.db);

  /** Whether this user must have a factor (MFA_REQUIRED or a role), whether or not they have one yet. */
  const requiredFor = async (userId: string): Promise<boolean> => deps.requiredForAll || (await deps.roleRequiresMfa(userId));

  return {
    requiredFor,

    /** Whether an SSO session authenticated with `amr` satisfies the account (the provider's login prompt re-asks otherwise). */
    async sessionSatisfies(accountId: string, amr: string[] | undefined): Promise<boolean> {
      if (amr?.includes('mfa')) return true;
      if (await requiredFor(accountId)) return false;
      return (await queries.listActiveFactorsByUser(accountId)).every((f) => f.type === 'recovery_code');
    },
  };
}
export type MfaPolicy = ReturnType<typeof createMfaPolicy>;
