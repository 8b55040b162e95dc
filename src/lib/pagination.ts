/**
 * The list convention of every JSON API: `?limit=` (default 50, max 200) and an opaque `?cursor=`;
 * answers are `{items, next_cursor}`. Cursors encode the last row's sort key (time, id) so pages stay
 * stable while rows are added.
 */
import { z } from 'zod';
import { AppError } from '../errors/index.js';
import { isUuid } from './uuid.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export const pageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  cursor: z.string().max(200).optional(),
});

/** What a caller asks for: at most `limit` items after the opaque `cursor` of the previous page. */
export type PageRequest = Pick<z.infer<typeof pageQuerySchema>, 'limit'> & { cursor?: string | undefined };

/** One page of items and the cursor of the next one (null on the last page). */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Cursor {
  /** RFC 3339 time (or any sortable string key) of the last item on the previous page. */
  key: string;
  id: string;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.key, cursor.id])).toString('base64url');
}

export function decodeCursor(value: string | undefined): Cursor | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { key: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through
  }
  throw new AppError('invalid_request', 'cursor: not a cursor returned by this API');
}

/** A database timestamp as RFC 3339 in UTC with microseconds (what `to_char(... 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` gives). */
const MICROSECOND_KEY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * Decodes a cursor of a list ordered by (time, id), the id a uuid unless `isId` says otherwise, checking both parts so they can go into SQL as they
 * are. The time keeps the database's microseconds: a JavaScript Date would cut them and skip rows.
 */
export function decodeTimeCursor(value: string | undefined, isId: (id: string) => boolean = isUuid): Cursor | undefined {
  const cursor = decodeCursor(value);
  if (cursor && (!MICROSECOND_KEY.test(cursor.key) || !isId(cursor.id))) throw new AppError('invalid_request', 'cursor: not a cursor returned by this API');
  return cursor;
}

/** A page's items mapped to their view, keeping its cursor. */
export function mapPage<T, U>(page: Page<T>, view: (item: T) => U): Page<U> {
  return { items: page.items.map(view), next_cursor: page.next_cursor };
}

/** Builds a page from `limit + 1` fetched rows: the extra row only tells whether there is a next page. */
export function toPage<T>(rows: T[], limit: number, cursorOf: (row: T) => Cursor): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > limit && last ? encodeCursor(cursorOf(last)) : null };
}

export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}

/** The links of a server-rendered list page: back to the first page (when on a later one) and to the next page. */
export interface PageLinks {
  first: string | undefined;
  next: string | undefined;
}

/**
 * Cursor links for a list page at `path`: its filters (empty ones left out) carried over, plus the cursor of
 * the next page. Cursors only go forward, so the way back is to the first page.
 */
export function pageLinks(path: string, filters: Record<string, string | undefined>, page: { next_cursor: string | null }, cursor: string | undefined): PageLinks {
  const href = (extra: Record<string, string>) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...filters, ...extra })) if (value !== undefined && value !== '') params.set(name, value);
    const rendered = params.toString();
    return rendered ? `${path}?${rendered}` : path;
  };
  return { first: cursor ? href({}) : undefined, next: page.next_cursor ? href({ cursor: page.next_cursor }) : undefined };
}
