/**
 * A browser (provider) SSO session known to a relying party only by the `sid` it was issued (OpenID Connect
 * Front-Channel/Back-Channel Logout §2: `sid` is per client), found with the grant it holds for that client
 * and their entries in the user's list. The account pages know their own SSO session this way: to mark it
 * as "this device" and to keep it when signing out everywhere else.
 */
import type { Db } from '../../db/client.js';
import { createAuthTokenQueries } from '../../queries/auth-tokens.js';
import { createOidcSessionQueries } from '../../queries/oidc-sessions.js';

/** Which browser session: the one that issued `sid` to `clientId`. */
export interface BrowserSessionRef {
  clientId: string;
  sid: string;
}

export interface BrowserSession {
  /** The provider's session id (`oidc_payloads.id`). */
  sessionId: string;
  /** The grant the session holds for the client, if any. */
  grantId: string | undefined;
  /** Their entries in the user's list (mirrors are written a moment after the provider's rows: may be missing). */
  sessionEntryId: string | undefined;
  grantEntryId: string | undefined;
}

export async function findBrowserSession(db: Db, userId: string, ref: BrowserSessionRef, now: Date): Promise<BrowserSession | undefined> {
  const session = await createOidcSessionQueries(db).findSessionByClientSid({ accountId: userId, clientId: ref.clientId, sid: ref.sid, now });
  if (!session) return undefined;
  const tokens = createAuthTokenQueries(db);
  const [sessionEntry, grantEntry] = await Promise.all([
    tokens.findOidcMirror(userId, 'oidc_session', session.id),
    session.grantId ? tokens.findOidcMirror(userId, 'oidc_grant', session.grantId) : undefined,
  ]);
  return { sessionId: session.id, grantId: session.grantId, sessionEntryId: sessionEntry?.id, grantEntryId: grantEntry?.id };
}
