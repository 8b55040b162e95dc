/**
 * The recent-sign-in rule for sensitive changes (a personal token, a new factor, new recovery codes): the
 * caller signed in within RECENT_SIGN_IN_MAX_AGE, or re-authenticates. A sign-in is proved either by a
 * first-party session (the moment it was created, and its amr) or by the provider, for the account pages
 * (the verified ID token's auth_time and amr, OpenID Connect Core §2).
 */
import type { Clock } from '../lib/clock.js';
import type { Db } from '../db/client.js';
import { createAuthTokenQueries } from '../queries/auth-tokens.js';

export type SignInProof =
  | { firstPartySessionId: string | undefined }
  | { providerSignIn: { at: Date; amr: string[] } };

export interface ProvedSignIn {
  at: Date;
  amr: string[];
}

export function createRecentSignIn(deps: { db: Db; clock: Clock; maxAge: number }) {
  const tokens = createAuthTokenQueries(deps.db);

  async function signInOf(userId: string, proof: SignInProof): Promise<ProvedSignIn | undefined> {
    if ('providerSignIn' in proof) return proof.providerSignIn;
    if (!proof.firstPartySessionId) return undefined;
    const session = await tokens.findUserTokenById(userId, proof.firstPartySessionId);
    return session?.kind === 'session' ? { at: session.createdAt, amr: session.amr ?? [] } : undefined;
  }

  return {
    maxAge: deps.maxAge,
    /** The sign-in, when it is recent enough; undefined otherwise. */
    async recent(userId: string, proof: SignInProof): Promise<ProvedSignIn | undefined> {
      const signIn = await signInOf(userId, proof);
      return signIn && deps.clock().getTime() - signIn.at.getTime() <= deps.maxAge * 1000 ? signIn : undefined;
    },
  };
}
export type RecentSignIn = ReturnType<typeof createRecentSignIn>;
