/** The devices a user verified at a sign-in: listed, and distrusted on request (the next sign-in is verified again). */
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import type { Clock } from '../../lib/clock.js';
import { createMfaQueries } from '../../queries/mfa.js';
import type { AuditService } from '../audit.js';
import type { RequestContext } from '../../lib/request-context.js';

export function createTrustedDeviceService(deps: { db: Db; clock: Clock; audit: AuditService }) {
  const queries = createMfaQueries(deps.db);
  return {
    async list(userId: string) {
      return (await queries.listTrustedDevices(userId, deps.clock())).map((d) => ({
        id: d.id,
        device_info: Object.fromEntries(Object.entries(d.deviceInfo).filter((e): e is [string, string] => typeof e[1] === 'string')),
        ip_address: d.ipAddress,
        created_at: d.createdAt.toISOString(),
        last_seen_at: d.lastSeenAt.toISOString(),
        trusted_until: d.trustedUntil.toISOString(),
      }));
    },

    /** Another user's device id answers 404 like an unknown one. */
    async distrust(userId: string, deviceId: string, context?: RequestContext): Promise<void> {
      const removed = /^[0-9a-f-]{36}$/i.test(deviceId) && (await queries.deleteTrustedDevice(userId, deviceId));
      if (!removed) throw new AppError('not_found', 'no such device', 404);
      await deps.audit.record({ type: 'device.distrusted', outcome: 'success', actor: { type: 'user', id: userId }, subject: { type: 'user', id: userId }, context, details: { device_id: deviceId } });
    },
  };
}
export type TrustedDeviceService = ReturnType<typeof createTrustedDeviceService>;
