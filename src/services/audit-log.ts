/**
 * Reading the audit log: filtered pages newest first, one event, and exports (NDJSON or CSV) streamed in
 * keyset batches so memory stays flat whatever the size. Reading and exporting are audited themselves.
 * An NDJSON export carries what an offline verification needs: each event's seal and, at the end, the seals
 * with their signed row lists (see audit-seal/).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { DbOrTx } from '../db/client.js';
import { AppError } from '../errors/index.js';
import { decodeTimeCursor, toPage, type Cursor } from '../lib/pagination.js';
import { createAuditLogQueries, type AuditEventFilter, type AuditEventRow } from '../queries/audit-log.js';
import { auditEventTypes, type AuditEvent, type AuditService } from './audit.js';
import type { RequestContext } from '../lib/request-context.js';
import { toAuditItem, type AuditItem } from './audit-seal/canonical.js';
import type { AuditSealService } from './audit-seal/service.js';

/** The filters of the list and the export, as query parameters (`type` repeatable). */
export const auditFilterSchema = z.object({
  type: z.union([z.string().max(100), z.array(z.string().max(100)).max(50)]).optional(),
  outcome: z.enum(['success', 'failure']).optional(),
  actor_id: z.string().min(1).max(200).optional(),
  subject_id: z.string().min(1).max(200).optional(),
  client_id: z.string().min(1).max(200).optional(),
  ip: z.string().min(1).max(64).optional(),
  from: z.string().max(64).optional(),
  to: z.string().max(64).optional(),
});
export type AuditFilterInput = z.infer<typeof auditFilterSchema>;

export const auditExportFormats = ['ndjson', 'csv'] as const;
export type AuditExportFormat = (typeof auditExportFormats)[number];

/** How an export is sent, by the API and the admin pages alike: its media type and a file name stamped with the time. */
export function auditExportFile(format: AuditExportFormat, at: Date): { contentType: string; filename: string } {
  const stamp = at.toISOString().replace(/[:.]/g, '-');
  return { contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson', filename: `audit-${stamp}.${format}` };
}

/** An event as the API answers: the canonical item plus the seal covering it (null until sealed). */
export type AuditItemView = AuditItem & { seal: { id: number } | null };

export interface AuditReader {
  audit: AuditEvent['actor'];
  context?: RequestContext | undefined;
}

/** RFC 3339 date-time with a required offset (section 5.6); fractions of a second allowed. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
/** Rows per export batch: one short query each, large enough that round trips do not dominate. */
const EXPORT_BATCH = 1000;
/** Seals read per query at the end of an export (each with up to 5000 row references). */
const EXPORT_SEAL_BATCH = 10;
/** A spreadsheet treats a cell starting with one of these as a formula (OWASP: CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;
const CSV_COLUMNS = ['id', 'at', 'type', 'outcome', 'actor_type', 'actor_id', 'subject_type', 'subject_id', 'client_id', 'ip', 'user_agent', 'request_id', 'details', 'seal_id'];

function invalid(parameter: string, message: string): AppError {
  return new AppError('invalid_request', `${parameter}: ${message}`);
}

function parseTime(parameter: 'from' | 'to', value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!RFC3339.test(value) || Number.isNaN(Date.parse(value.replace(' ', 'T')))) throw invalid(parameter, 'must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z');
  return value;
}

/**
 * Checks the filters and turns them into query terms. `type` takes catalogue types and prefix forms
 * (`login.*`: every type starting with `login.`); an unknown one is refused, not silently matched by nothing.
 */
export function parseAuditFilter(input: AuditFilterInput): AuditEventFilter {
  const patterns = input.type === undefined ? [] : Array.isArray(input.type) ? input.type : [input.type];
  let types: string[] | undefined;
  if (patterns.length) {
    const expanded = new Set<string>();
    for (const pattern of patterns) {
      const matches = pattern.endsWith('.*')
        ? auditEventTypes.filter((t) => t.startsWith(pattern.slice(0, -1)))
        : auditEventTypes.filter((t) => t === pattern);
      if (!matches.length) throw invalid('type', `unknown event type "${pattern.slice(0, 100)}"`);
      for (const t of matches) expanded.add(t);
    }
    types = [...expanded];
  }
  if (input.ip !== undefined) {
    const [address, bits, ...rest] = input.ip.split('/');
    const family = isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    if (!family || rest.length || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) throw invalid('ip', 'must be an IP address or a network in CIDR notation');
  }
  const from = parseTime('from', input.from);
  const to = parseTime('to', input.to);
  if (from && to && Date.parse(from.replace(' ', 'T')) > Date.parse(to.replace(' ', 'T'))) throw invalid('from', 'is after to');
  return { types, outcome: input.outcome, actorId: input.actor_id, subjectId: input.subject_id, clientId: input.client_id, ip: input.ip, from, to };
}

/** The filters as given, for the audit record of a read. */
function filtersOf(input: AuditFilterInput): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

function viewOf(row: AuditEventRow): AuditItemView {
  return { ...toAuditItem(row), seal: row.sealId === null ? null : { id: row.sealId } };
}

const cursorOf = (row: AuditEventRow): Cursor => ({ key: row.at, id: row.id });

function csvCell(value: string | number | null): string {
  if (value === null) return '';
  let text = String(value);
  // Prefixed with a quote so the spreadsheet shows the text instead of evaluating it.
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n']/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvLine(cells: Array<string | number | null>): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

export function createAuditLogService(deps: { db: DbOrTx; audit: AuditService; seals: AuditSealService; now?: () => Date }) {
  const queries = createAuditLogQueries(deps.db);
  const now = deps.now ?? (() => new Date());

  /** Every matching row, newest first, in keyset batches (never more than one batch in memory). */
  async function* matchingRows(filter: AuditEventFilter): AsyncGenerator<AuditEventRow> {
    let after: Cursor | undefined;
    for (;;) {
      const rows = await queries.listAuditEvents(filter, EXPORT_BATCH, after);
      const batch = rows.slice(0, EXPORT_BATCH);
      yield* batch;
      const last = batch[batch.length - 1];
      if (rows.length <= EXPORT_BATCH || !last) return;
      after = cursorOf(last);
    }
  }

  async function* ndjson(filter: AuditEventFilter, input: AuditFilterInput): AsyncGenerator<string> {
    const complete = Object.keys(filtersOf(input)).length === 0;
    yield `${JSON.stringify({ record: 'export', version: 1, exported_at: now().toISOString(), filters: filtersOf(input), complete })}\n`;
    // A complete export carries every seal up to the newest one now: all of its rows are committed, so in the file.
    const newest = complete ? ((await deps.seals.lastSeal())?.id ?? 0) : 0;
    let lowest = Number.POSITIVE_INFINITY;
    let highest = 0;
    for await (const row of matchingRows(filter)) {
      if (row.sealId !== null) {
        lowest = Math.min(lowest, row.sealId);
        highest = Math.max(highest, row.sealId);
      }
      yield `${JSON.stringify({ record: 'event', ...viewOf(row) })}\n`;
    }
    // The seals that vouch for the rows above, contiguous so their chain can be followed; all of them for a
    // complete export, so a sealed row missing from the file is noticed too.
    if (complete) {
      lowest = 1;
      highest = newest;
    }
    for (let from = lowest; from <= highest; ) {
      const seals = await deps.seals.sealsForExport(from, highest, EXPORT_SEAL_BATCH);
      for (const seal of seals) yield `${JSON.stringify({ record: 'seal', ...seal })}\n`;
      const last = seals[seals.length - 1];
      if (!last) break;
      from = last.id + 1;
    }
  }

  async function* csv(filter: AuditEventFilter): AsyncGenerator<string> {
    yield csvLine(CSV_COLUMNS);
    for await (const row of matchingRows(filter)) {
      yield csvLine([
        row.id,
        row.at,
        row.type,
        row.outcome,
        row.actorType,
        row.actorId,
        row.subjectType,
        row.subjectId,
        row.clientId,
        row.ip,
        row.userAgent,
        row.requestId,
        JSON.stringify(row.details),
        row.sealId,
      ]);
    }
  }

  return {
    async listEvents(input: AuditFilterInput & { limit: number; cursor?: string | undefined }, reader: AuditReader) {
      const { limit, cursor, ...filters } = input;
      const filter = parseAuditFilter(filters);
      const rows = await queries.listAuditEvents(filter, limit, decodeTimeCursor(cursor));
      await deps.audit.record({ type: 'audit.read', outcome: 'success', actor: reader.audit, context: reader.context, details: { filters: filtersOf(filters), cursor: cursor !== undefined, count: Math.min(rows.length, limit) } });
      const page = toPage(rows, limit, cursorOf);
      return { items: page.items.map(viewOf), next_cursor: page.next_cursor };
    },

    async getEvent(id: string, reader: AuditReader): Promise<AuditItemView> {
      const row = z.uuid().safeParse(id).success ? await queries.findAuditEventById(id) : undefined;
      if (!row) throw new AppError('not_found', 'no such audit event', 404);
      await deps.audit.record({ type: 'audit.read', outcome: 'success', actor: reader.audit, context: reader.context, details: { event: id } });
      return viewOf(row);
    },

    /** Checks the filters and records the export, then returns its lines to stream. */
    async exportEvents(input: AuditFilterInput, format: AuditExportFormat, reader: AuditReader): Promise<AsyncIterable<string>> {
      const filter = parseAuditFilter(input);
      await deps.audit.record({ type: 'audit.exported', outcome: 'success', actor: reader.audit, context: reader.context, details: { filters: filtersOf(input), format } });
      return format === 'csv' ? csv(filter) : ndjson(filter, input);
    },
  };
}
export type AuditLogService = ReturnType<typeof createAuditLogService>;
