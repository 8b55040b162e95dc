/**
 * The audit log pages under /admin/audit (permission auth.audit.read): the filtered list with cursor paging,
 * one event in full, and the export of every event the filters match (CSV or NDJSON), streamed under the
 * same admin session as the page that links to it. They read through the audit-log service the API uses
 * (GET /api/auth/audit/ and its export), so the filters mean the same, and each read and export is audited
 * there.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { auditExportFile, auditExportFormats, auditFilterSchema, type AuditFilterInput, type AuditLogService } from '../../services/audit-log.js';
import type { AdminContext } from './context.js';
import { pageLinks } from '../../lib/pagination.js';
import { auditPageQuerySchema, eventDetail, eventSummary, filterFormValues, filterHref, filterOf, filterParams, typeSuggestions } from './audit-view.js';

export interface AuditPageDeps {
  context: AdminContext;
  auditLog: Pick<AuditLogService, 'listEvents' | 'getEvent' | 'exportEvents'>;
}

/** Events per page: enough to scan, small enough for a phone. */
const PAGE_SIZE = 50;
const idParams = z.object({ id: z.string().max(100) });
const exportFormat = z.object({ format: z.enum(auditExportFormats) });

type FilterCheck = { filter: AuditFilterInput; cursor: string | undefined; error?: undefined } | { filter: AuditFilterInput; cursor?: undefined; error: string };

/**
 * The URL's filters, checked as the API checks them (the same schema, then the service's own parse on use).
 * A bad one is answered with the form again and the reason, never with an empty list.
 */
function readFilters(query: unknown): FilterCheck {
  const parsed = auditPageQuerySchema.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { filter: {}, error: `${String(issue?.path[0] ?? 'filter')}: ${issue?.message ?? 'not valid'}` };
  }
  const filter = filterOf(parsed.data);
  const checked = auditFilterSchema.safeParse(filter);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    return { filter: {}, error: `${String(issue?.path[0] ?? 'filter')}: ${issue?.message ?? 'not valid'}` };
  }
  return { filter, cursor: parsed.data.cursor };
}

/** A refused filter or cursor from the service (`invalid_request`) becomes the form's error; anything else is thrown on. */
function filterError(error: unknown): string {
  if (error instanceof AppError && error.code === 'invalid_request') return error.message;
  throw error;
}

export async function adminAuditRoutes(app: FastifyInstance, deps: AuditPageDeps): Promise<void> {
  const { context, auditLog } = deps;
  const page = { config: { page: true, adminPermission: 'auth.audit.read' } } as const;
  const types = typeSuggestions();

  function sendList(request: FastifyRequest, reply: FastifyReply, status: number, filter: AuditFilterInput, values: { items: ReturnType<typeof eventSummary>[]; next: string | null; cursor?: string | undefined; error?: string | undefined }) {
    const links = pageLinks('/admin/audit', filterParams(filter), { next_cursor: values.next }, values.cursor);
    return context.send(request, reply, status, 'audit', {
      title: 'Audit log',
      current: '/admin/audit',
      form: filterFormValues(filter),
      filtered: Object.keys(filter).length > 0,
      types,
      error: values.error,
      items: values.items,
      newestHref: links.first,
      olderHref: links.next,
      exportCsv: filterHref('/admin/audit/export', filter, { format: 'csv' }),
      exportNdjson: filterHref('/admin/audit/export', filter, { format: 'ndjson' }),
    });
  }

  app.get('/admin/audit', page, async (request, reply) => {
    const read = readFilters(request.query);
    if (read.error !== undefined) return sendList(request, reply, 400, read.filter, { items: [], next: null, error: read.error });
    const reader = context.actorOf(request);
    try {
      const result = await auditLog.listEvents({ ...read.filter, limit: PAGE_SIZE, cursor: read.cursor }, { audit: reader.audit, context: reader.context });
      return sendList(request, reply, 200, read.filter, { items: result.items.map(eventSummary), next: result.next_cursor, cursor: read.cursor });
    } catch (error) {
      return sendList(request, reply, 400, read.filter, { items: [], next: null, error: filterError(error) });
    }
  });

  // Before `/admin/audit/:id`, though Fastify prefers the static path anyway.
  app.get('/admin/audit/export', page, async (request, reply) => {
    const format = exportFormat.safeParse(request.query);
    const read = readFilters({ ...(request.query as Record<string, unknown>), format: undefined, cursor: undefined });
    const error = !format.success ? 'format: must be csv or ndjson' : read.error;
    if (error !== undefined) return sendList(request, reply, 400, read.filter, { items: [], next: null, error });
    const reader = context.actorOf(request);
    let lines: AsyncIterable<string>;
    try {
      lines = await auditLog.exportEvents(read.filter, format.data!.format, { audit: reader.audit, context: reader.context });
    } catch (caught) {
      return sendList(request, reply, 400, read.filter, { items: [], next: null, error: filterError(caught) });
    }
    const file = auditExportFile(format.data!.format, new Date());
    // A download, not a page: audit data is never kept by a cache, and the browser never sniffs it into HTML.
    return reply
      .type(file.contentType)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('content-disposition', `attachment; filename="${file.filename}"`)
      .send(Readable.from(lines));
  });

  app.get('/admin/audit/:id', page, async (request, reply) => {
    const reader = context.actorOf(request);
    // getEvent answers 404 for an id that is no uuid or no event (rendered as a page by the error handler).
    const event = await auditLog.getEvent(idParams.parse(request.params).id, { audit: reader.audit, context: reader.context });
    return context.send(request, reply, 200, 'audit-event', { title: `Audit event ${event.type}`, current: '/admin/audit', event: eventDetail(event) });
  });
}
