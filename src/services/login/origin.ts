/**
 * Where a sign-in comes from: its channel (an app through the JSON API, or a browser through the OIDC
 * login interaction), client, interaction and device. Fixed at the password step, stored in the login
 * challenge, and checked again at every later step.
 */
import type { LoginChallengeRow } from '../../queries/one-time-secrets.js';
import type { UserRow } from '../../queries/users.js';
import type { RequestContext } from '../../lib/request-context.js';
import type { LoginAttempt } from '../brute-force.js';
import { normalizeEmail } from '../users.js';

/** The two doors of a sign-in: `api` (POST /api/auth/login/ and /verify/) and `form` (the browser's interaction). */
export type LoginChannel = 'api' | 'form';

export interface LoginOrigin {
  channel: LoginChannel;
  clientId?: string | undefined;
  interactionUid?: string | undefined;
  deviceId?: string | undefined;
  deviceName?: string | undefined;
  deviceDigest?: string | undefined;
  /** The device cookie issued with this answer when the login has no other device (remembered if it completes at once). */
  cookieDigest?: string | undefined;
  knownDevice: boolean;
  /** The address the login started from, when it continues from another one. */
  startIp?: string | undefined;
}

/** The origin of a login that waited at a challenge (its password attempt was counted). */
export const originOf = (row: LoginChallengeRow): LoginOrigin & { counted: boolean } => ({
  channel: row.channel,
  clientId: row.clientId ?? undefined,
  interactionUid: row.interactionUid ?? undefined,
  deviceId: row.deviceId ?? undefined,
  deviceName: row.deviceName ?? undefined,
  deviceDigest: row.deviceDigest ?? undefined,
  knownDevice: row.knownDevice,
  startIp: row.ipAddress ?? undefined,
  counted: true,
});

/** The brute-force attempt a step of this login counts as: its identifier, address, and its device once known. */
export function attemptOf(user: UserRow, origin: Pick<LoginOrigin, 'knownDevice' | 'deviceDigest'>, ip: string | undefined): LoginAttempt {
  return { identifier: normalizeEmail(user.email), ip, knownDevice: origin.knownDevice ? origin.deviceDigest : undefined };
}

/** The request context as audited (a wider object, such as the form's context with its interaction, is narrowed). */
export const auditContext = (context: RequestContext): RequestContext => ({ ip: context.ip, userAgent: context.userAgent, requestId: context.requestId });
export const userRef = (user: UserRow) => ({ type: 'user', id: user.id });
