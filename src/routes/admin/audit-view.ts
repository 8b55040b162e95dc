/**
 * The audit pages' filters and view models. The filters travel in the URL under the API's own names
 * (`type`, `outcome`, `actor_id`, `subject_id`, `client_id`, `ip`, `from`, `to`), so a filtered page, its
 * next page and its export links are plain links that can be bookmarked or shared, and mean what the same
 * query means on `GET /api/auth/audit/`. Pure functions; no row reaches a template.
 */
import { z } from 'zod';
import type { AuditFilterInput, AuditItemView } from '../../services/audit-log.js';
import { auditEventTypes } from '../../services/audit.js';

/** A form's empty field is sent as `name=`: no filter, not a filter on the empty string. */
const optionalText = (max: number) =>
  z
    .string()
    .max(max)
    .optional()
    .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

/**
 * `<input type="datetime-local">` sends `2026-12-03T18:05` (no seconds, no offset); the page labels its time
 * fields as UTC, so such a value is read as UTC. Anything else goes to the service as it is and must be
 * RFC 3339 there (the service's check names the field when it is not).
 */
const LOCAL_MINUTE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/;
const timeField = optionalText(64).transform((value) => (value !== undefined && LOCAL_MINUTE.test(value) ? `${value.length === 16 ? `${value}:00` : value}Z` : value));

export const auditPageQuerySchema = z.object({
  type: z.union([z.string().max(100), z.array(z.string().max(100)).max(50)]).optional(),
  outcome: z
    .union([z.literal(''), z.enum(['success', 'failure'])])
    .optional()
    .transform((value) => value || undefined),
  actor_id: optionalText(200),
  subject_id: optionalText(200),
  client_id: optionalText(200),
  ip: optionalText(64),
  from: timeField,
  to: timeField,
  cursor: z.string().max(200).optional(),
});
export type AuditPageQuery = z.infer<typeof auditPageQuerySchema>;

/** The filters of a page query as the audit service takes them (empty values dropped). */
export function filterOf(query: AuditPageQuery): AuditFilterInput {
  // The form's one field takes several types separated by spaces or commas; the URL may repeat `type` too.
  const types = [query.type ?? []].flat().flatMap((t) => t.split(/[\s,]+/)).filter((t) => t !== '');
  const filter: AuditFilterInput = { type: types.length === 0 ? undefined : types.length === 1 ? types[0] : types, outcome: query.outcome, actor_id: query.actor_id, subject_id: query.subject_id, client_id: query.client_id, ip: query.ip, from: query.from, to: query.to };
  return Object.fromEntries(Object.entries(filter).filter(([, value]) => value !== undefined)) as AuditFilterInput;
}

/**
 * The filters as flat URL parameters for links (several types in one `type`, separated by spaces, as the
 * form sends them).
 */
export function filterParams(filter: AuditFilterInput): Record<string, string | undefined> {
  const { type, ...rest } = filter;
  return { type: type === undefined ? undefined : [type].flat().join(' '), ...rest };
}

/** A link to `path` with the filters and `extra` (an export format). */
export function filterHref(path: string, filter: AuditFilterInput, extra: Record<string, string> = {}): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...filterParams(filter), ...extra })) if (value !== undefined) search.set(name, value);
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/** The values the filter form shows again (a `datetime-local` field shows minutes of a UTC time). */
export function filterFormValues(filter: AuditFilterInput) {
  const local = (value: string | undefined) => (value && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:00)?Z$/.test(value) ? value.slice(0, 16) : (value ?? ''));
  return {
    type: [filter.type ?? []].flat().join(' '),
    outcome: filter.outcome ?? '',
    actor_id: filter.actor_id ?? '',
    subject_id: filter.subject_id ?? '',
    client_id: filter.client_id ?? '',
    ip: filter.ip ?? '',
    from: local(filter.from),
    to: local(filter.to),
    // Whatever the time field cannot show (an offset, seconds) is shown as typed in a text field instead.
    fromIsLocal: filter.from === undefined || local(filter.from) !== filter.from,
    toIsLocal: filter.to === undefined || local(filter.to) !== filter.to,
  };
}

/** The type field's suggestions: every catalogue type and every prefix form (`login.*`). */
export function typeSuggestions(): string[] {
  const prefixes = new Set(auditEventTypes.filter((t) => t.includes('.')).map((t) => `${t.slice(0, t.indexOf('.'))}.*`));
  return [...prefixes, ...auditEventTypes].sort();
}

/** "2026-12-03 18:05:07 UTC" from the stored microsecond time (the exact value stays in `<time datetime>`). */
const readableTime = (at: string) => `${at.slice(0, 10)} ${at.slice(11, 19)} UTC`;

const party = (p: { type: string; id: string | null } | null) => (p ? (p.id ? `${p.type} ${p.id}` : p.type) : undefined);

/** One line of the list. */
export function eventSummary(item: AuditItemView) {
  return {
    id: item.id,
    at: item.at,
    when: readableTime(item.at),
    type: item.type,
    failed: item.outcome === 'failure',
    outcome: item.outcome,
    actor: party(item.actor),
    subject: party(item.subject),
    client: item.client_id ?? undefined,
    ip: item.ip ?? undefined,
  };
}

/** The detail page: every field, and the details as indented JSON (rendered escaped, as text). */
export function eventDetail(item: AuditItemView) {
  return {
    ...eventSummary(item),
    exactTime: item.at,
    actorType: item.actor.type,
    actorId: item.actor.id ?? undefined,
    subjectType: item.subject?.type,
    subjectId: item.subject?.id ?? undefined,
    userAgent: item.user_agent ?? undefined,
    requestId: item.request_id ?? undefined,
    seal: item.seal?.id,
    details: JSON.stringify(item.details, null, 2),
  };
}
