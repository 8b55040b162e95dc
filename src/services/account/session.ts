/**
 * The account pages' own session: a sealed cookie (AES-256-GCM, nothing readable or forgeable by the browser)
 * naming who signed in through the provider, kept by no replica. It lives only as long as the provider's SSO
 * session that issued it: every request checks that session still exists, so a logout, "sign out everywhere",
 * a password reset or an administrator ending the user's sessions ends the account pages too. A disabled user
 * is signed out at once.
 */
import { decrypt, encrypt, randomToken } from '../../lib/crypto.js';
import type { Clock } from '../../lib/clock.js';
import type { Db } from '../../db/client.js';
import { isClientSessionActive } from '../../queries/oidc-sessions.js';
import { createUserQueries, type UserRow } from '../../queries/users.js';
import { ACCOUNT_CLIENT_ID, type AccountSignIn, type PendingSignIn } from './relying-party.js';

/** The longest an account session lives even while its SSO session goes on (the user signs in again). */
const ACCOUNT_SESSION_MAX_AGE = 12 * 3600;
/** How long a started sign-in may take before its callback is refused. */
const PENDING_SIGN_IN_MAX_AGE = 15 * 60;

export interface AccountSession extends AccountSignIn {
  /** Random per session: binds the CSRF tokens of its forms. */
  id: string;
  expiresAt: number;
}

export interface ActiveAccountSession extends AccountSession {
  user: UserRow;
}

export function createAccountSessions(deps: {
  key: Buffer;
  db: Db;
  clock: Clock;
  /** Sensitive changes need a sign-in within this many seconds (RECENT_SIGN_IN_MAX_AGE, as for the JSON API). */
  recentSignInMaxAge: number;
}) {
  const users = createUserQueries(deps.db);
  const nowSeconds = () => Math.floor(deps.clock().getTime() / 1000);

  function open<T extends { expiresAt: number }>(value: string | undefined, aad: string): T | undefined {
    if (!value || value.length > 4096) return undefined;
    try {
      const parsed = JSON.parse(decrypt(deps.key, value, aad)) as T;
      return typeof parsed.expiresAt === 'number' && parsed.expiresAt > nowSeconds() ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    pendingCookieMaxAge: PENDING_SIGN_IN_MAX_AGE,
    sessionCookieMaxAge: ACCOUNT_SESSION_MAX_AGE,

    sealPending(pending: PendingSignIn): string {
      return encrypt(deps.key, JSON.stringify({ ...pending, expiresAt: nowSeconds() + PENDING_SIGN_IN_MAX_AGE }), 'account-pending-sign-in');
    },
    openPending(value: string | undefined): PendingSignIn | undefined {
      return open<PendingSignIn & { expiresAt: number }>(value, 'account-pending-sign-in');
    },

    seal(signIn: AccountSignIn): string {
      const session: AccountSession = { ...signIn, id: randomToken(16), expiresAt: nowSeconds() + ACCOUNT_SESSION_MAX_AGE };
      return encrypt(deps.key, JSON.stringify(session), 'account-session');
    },

    /** The session a cookie names, if it is still alive (its SSO session exists, its user is enabled). */
    async open(value: string | undefined): Promise<ActiveAccountSession | undefined> {
      const session = open<AccountSession>(value, 'account-session');
      if (!session) return undefined;
      const active = await isClientSessionActive(deps.db, { accountId: session.userId, clientId: ACCOUNT_CLIENT_ID, sid: session.sid, now: deps.clock() });
      if (!active) return undefined;
      const user = await users.findUserById(session.userId);
      if (!user || user.disabled) return undefined;
      return { ...session, user };
    },

    recentSignInMaxAge: deps.recentSignInMaxAge,
    /** Whether the session's last authentication is recent enough for a sensitive change. */
    isRecent(session: AccountSession): boolean {
      return nowSeconds() - session.authTime <= deps.recentSignInMaxAge;
    },
  };
}
export type AccountSessions = ReturnType<typeof createAccountSessions>;
