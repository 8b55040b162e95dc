/** A user's own security events (what the account's activity list shows), paged newest first. */
import type { DbOrTx } from '../db/client.js';
import { decodeTimeCursor, toPage, type Page, type PageRequest } from '../lib/pagination.js';
import { createActivityQueries, type ActivityRow } from '../queries/activity.js';

export type { ActivityRow };

export function createActivityService(deps: { db: DbOrTx }) {
  const queries = createActivityQueries(deps.db);
  return {
    /** Events where the user is the actor or the subject; an unknown or altered cursor is `invalid_request`. */
    async listUserActivity(userId: string, page: PageRequest): Promise<Page<ActivityRow>> {
      const after = decodeTimeCursor(page.cursor);
      const rows = await queries.findUserActivity(userId, { limit: page.limit + 1, after });
      return toPage(rows, page.limit, (row) => ({ key: row.key, id: row.id }));
    },
  };
}
export type ActivityService = ReturnType<typeof createActivityService>;
