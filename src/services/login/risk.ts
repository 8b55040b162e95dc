/**
 * The risk facts of a sign-in: whether its device is trusted (it passed a step before, within
 * DEVICE_TRUST_TTL) and whether its network (IPv4 /24, IPv6 /64) is new to the account (not seen within
 * IP_VERIFICATION_PERIOD, read only when the new-IP check is on).
 */
import type { Db } from '../../db/client.js';
import { addSeconds, type Clock } from '../../lib/clock.js';
import { networkOf } from '../../lib/network.js';
import { createMfaQueries, type TrustedDeviceRow } from '../../queries/mfa.js';
import type { LoginPolicy } from './plan.js';

export interface LoginFacts {
  trusted: TrustedDeviceRow | undefined;
  /** The login's network, when the new-IP check is on. */
  network: string | undefined;
  newNetwork: boolean;
}

export function createRiskFacts(deps: { db: Db; clock: Clock; policy: Pick<LoginPolicy, 'ipVerification' | 'ipVerificationPeriod'> }) {
  const mfa = createMfaQueries(deps.db);
  return {
    /** What is known of where a login comes from: whether its device is trusted, whether its network is new. */
    async whereFrom(userId: string, deviceDigest: string | undefined, ip: string | undefined): Promise<LoginFacts> {
      const now = deps.clock();
      const trusted = deviceDigest ? await mfa.findTrustedDevice(userId, deviceDigest, now) : undefined;
      const network = deps.policy.ipVerification === 'off' ? undefined : networkOf(ip);
      const newNetwork = network !== undefined && !(await mfa.isKnownNetwork(userId, network, addSeconds(now, -deps.policy.ipVerificationPeriod)));
      return { trusted, network, newNetwork };
    },
  };
}
export type RiskFacts = ReturnType<typeof createRiskFacts>;
