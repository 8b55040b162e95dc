/**
 * The session service: one object over the session modules in ./sessions/, so its callers (login, the bearer
 * strategies, the token endpoints, the auth routes, password management, security reports) keep one
 * dependency. Each module holds one concept:
 *  - refresh.ts: creating a session at login and the refresh rotation core (its race rules in its header);
 *  - authenticate.ts: who a session access token or personal token speaks for, and introspection (RFC 7662);
 *  - personal-tokens.ts: creating personal API tokens;
 *  - token-list.ts: the owner's list of sessions and tokens, and changes to one entry;
 *  - revocation.ts: ending one session or token (RFC 7009, logout) and every sign-in of a user at once.
 * Tokens are stored only as keyed digests (`TokenDigest`, lib/crypto.ts).
 */
import { createTokenAuthentication } from './sessions/authenticate.js';
import { auditRecorder, type SessionServiceDeps } from './sessions/model.js';
import { createPersonalTokens } from './sessions/personal-tokens.js';
import { createRefreshRotation } from './sessions/refresh.js';
import { createRevocation } from './sessions/revocation.js';
import { createTokenList } from './sessions/token-list.js';

export type { TokenPair } from './sessions/model.js';

export function createSessionService(deps: SessionServiceDeps) {
  const record = auditRecorder(deps);
  const { revokeToken, ...revocation } = createRevocation(deps, record);
  return {
    ...createRefreshRotation(deps, record),
    ...createTokenAuthentication(deps),
    ...createPersonalTokens(deps, record),
    ...createTokenList(deps, record, { revokeToken }),
    ...revocation,
  };
}
export type SessionService = ReturnType<typeof createSessionService>;
