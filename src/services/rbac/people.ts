/**
 * The people the authorization pages name: users found by email (normalized as stored) and the emails of
 * user ids, so forms and listings speak of people rather than ids. Reads only.
 */
import { isUuid } from '../../lib/uuid.js';
import { normalizeEmail } from '../users.js';
import type { RbacWritePath } from './write-path.js';

export function createPeopleLookups(path: RbacWritePath) {
  const { queries } = path;
  return {
    /** The user of an email, if there is one. */
    async findUserIdByEmail(email: string): Promise<string | undefined> {
      const normalized = normalizeEmail(email);
      if (!normalized || normalized.includes('\u0000')) return undefined;
      return (await queries.findUsersByEmails([normalized]))[0]?.id;
    },
    /** Emails of user ids; unknown or malformed ids are left out. */
    userEmails: (ids: string[]) => queries.findUserEmails([...new Set(ids.filter(isUuid))]),
  };
}
