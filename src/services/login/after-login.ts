/**
 * Everything a finished sign-in leaves behind, for either channel: brute-force counters reset, the device
 * remembered (its own count from now on) and trusted when it passed a step, the network remembered, the
 * audit events, and the notices the user gets afterwards.
 */
import type { Db } from '../../db/client.js';
import { addSeconds, type Clock } from '../../lib/clock.js';
import { describeDevice } from '../../lib/device.js';
import { networkOf } from '../../lib/network.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createMfaQueries } from '../../queries/mfa.js';
import type { UserRow } from '../../queries/users.js';
import type { AuditService } from '../audit.js';
import type { StepReason } from '../auth-methods.js';
import type { BruteForceProtector } from '../brute-force.js';
import type { SecurityNotices } from '../mfa/notices.js';
import { attemptOf, auditContext, userRef, type LoginChannel, type LoginOrigin } from './origin.js';
import type { LoginPolicy } from './plan.js';
import type { LoginFacts, RiskFacts } from './risk.js';

export function createAfterLogin(deps: {
  db: Db;
  clock: Clock;
  bruteForce: BruteForceProtector;
  notices: SecurityNotices;
  audit: AuditService;
  risk: RiskFacts;
  policy: LoginPolicy;
  /** Lifetimes of what a login starts (API session, browser SSO session), for the report links. */
  sessionTtl: Record<LoginChannel, number>;
}) {
  const mfa = createMfaQueries(deps.db);
  const { policy } = deps;

  /**
   * `passed` are the steps the login went through; `facts` are the plan's when the login completes at once
   * (read again after a challenge: time passed).
   */
  return async function afterLogin(user: UserRow, origin: LoginOrigin & { counted: boolean }, passed: StepReason[], context: RequestContext, facts?: LoginFacts): Promise<void> {
    const now = deps.clock();
    const { trusted, network, newNetwork } = facts ?? (await deps.risk.whereFrom(user.id, origin.deviceDigest, context.ip));
    if (origin.counted || passed.length) await deps.bruteForce.recordSuccess(attemptOf(user, origin, context.ip));
    // From now on this device keeps its own brute-force count (see first-factor.ts).
    const knownDigest = origin.deviceDigest ?? origin.cookieDigest;
    if (knownDigest) await deps.bruteForce.rememberDevice(user.id, knownDigest, now);
    const device = describeDevice(context.userAgent, origin.deviceId, origin.deviceName);
    // What the user is told about afterwards: a device never verified before that got in with a factor
    // (its code went to the factor, so no email said so), or a new network (IP_VERIFICATION=notify). A login
    // that just passed a device or network check already got an email with the same details (unless it
    // finished from another network than it started from).
    const notices: Array<'new_device' | 'new_ip'> = [];
    const toldOfThisNetwork = (passed.includes('new_ip') || passed.includes('new_device')) && networkOf(origin.startIp ?? context.ip) === networkOf(context.ip);
    if (origin.deviceDigest) {
      if (passed.length) {
        const row = await mfa.trustDevice({ userId: user.id, deviceDigest: origin.deviceDigest, deviceInfo: device, ipAddress: context.ip ?? null, now, trustedUntil: addSeconds(now, policy.deviceTrustTtl) });
        if (!trusted) {
          await deps.audit.record({ type: 'device.trusted', outcome: 'success', actor: { type: 'user', id: user.id }, subject: userRef(user), context: auditContext(context), details: { device_id: row.id, until: row.trustedUntil.toISOString() } });
          if (policy.deviceVerification === 'challenge' && passed.includes('mfa')) notices.push('new_device');
        }
      } else if (trusted) await mfa.touchTrustedDevice(trusted.id, context.ip ?? null, now);
    }
    if (network) {
      await mfa.rememberNetwork(user.id, network, now);
      if (newNetwork && !toldOfThisNetwork) {
        await deps.audit.record({ type: 'login.new_ip', outcome: 'success', actor: { type: 'user', id: user.id }, subject: userRef(user), context: auditContext(context), details: { network, notified: policy.ipVerification === 'notify' } });
        if (policy.ipVerification === 'notify') notices.push('new_ip');
      }
    }
    if (notices.length) {
      await deps.notices.newSignIn(user, notices, { device, ip: context.ip, at: now, deviceDigest: origin.deviceDigest, sessionTtl: deps.sessionTtl[origin.channel] });
    }
  };
}
export type AfterLogin = ReturnType<typeof createAfterLogin>;
