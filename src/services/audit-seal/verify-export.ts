/**
 * Offline verification of an NDJSON export (`keryu audit verify --export FILE`): needs only the file and the
 * public keys (JWKS from GET /api/auth/audit/keys/, fetched and kept beforehand). Checks every seal in the
 * file (signature, digest over its row list, chain between consecutive seals), every event against the row
 * digest its seal lists, and, for an unfiltered export, that no sealed row is missing from the file.
 */
import { z } from 'zod';
import { rowDigest, sealFieldsOf, type AuditItem, type SealView } from './canonical.js';
import { verificationKeys } from './signature.js';
import { checkSeal, truncationProblem, type AuditProblem, type SealWithRows } from './verify.js';

export interface ExportVerifyResult {
  ok: boolean;
  problem?: AuditProblem | undefined;
  events: number;
  seals: number;
  /** Events the file carries no seal for (written after the newest seal in the file). */
  unsealed: number;
  last?: { id: number; digest: string } | undefined;
}

const headerSchema = z.object({ record: z.literal('export'), version: z.literal(1), complete: z.boolean() });

export class ExportFormatError extends Error {}

export async function verifyExport(
  lines: AsyncIterable<string>,
  jwks: { keys: Array<Record<string, unknown>> },
  options: { expectDigest?: string | undefined } = {},
): Promise<ExportVerifyResult> {
  const keys = verificationKeys(jwks);
  const result: ExportVerifyResult = { ok: true, events: 0, seals: 0, unsealed: 0 };
  const fail = (problem: AuditProblem): ExportVerifyResult => ({ ...result, ok: false, problem });
  const events = new Map<string, { digest: string; seal: number | null }>();
  const sealed = new Map<string, { seal: number; digest: string }>();
  const seals: SealWithRows[] = [];
  let complete: boolean | undefined;
  let previous: SealWithRows | undefined;
  let lineNumber = 0;

  for await (const line of lines) {
    lineNumber += 1;
    if (!line.trim()) continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new ExportFormatError(`line ${lineNumber}: not JSON`);
    }
    if (complete === undefined) {
      const header = headerSchema.safeParse(record);
      if (!header.success) throw new ExportFormatError('line 1: not a keryu audit export (NDJSON) header');
      complete = header.data.complete;
      continue;
    }
    if (record.record === 'event') {
      const { record: _kind, seal, ...item } = record as unknown as AuditItem & { record: string; seal: { id: number } | null };
      events.set(item.id, { digest: rowDigest(item), seal: seal?.id ?? null });
      result.events += 1;
    } else if (record.record === 'seal') {
      const view = record as unknown as SealView & { rows: Array<[string, string]> };
      const seal: SealWithRows = { ...sealFieldsOf(view), rowIds: view.rows.map((r) => r[0]), rowDigests: view.rows.map((r) => r[1]) };
      const expectedId = previous ? previous.id + 1 : complete ? 1 : undefined;
      const problem = await checkSeal(seal, previous, expectedId, keys);
      if (problem) return fail(problem);
      seal.rowIds.forEach((id, i) => sealed.set(id, { seal: seal.id, digest: seal.rowDigests[i] ?? '' }));
      seals.push(seal);
      previous = seal;
      result.seals += 1;
      result.last = { id: seal.id, digest: seal.digest };
    } else {
      throw new ExportFormatError(`line ${lineNumber}: unknown record`);
    }
  }
  if (complete === undefined) throw new ExportFormatError('empty file');

  // Rows in seal order: changed, or (in a complete export) missing.
  for (const seal of seals) {
    for (let i = 0; i < seal.rowIds.length; i++) {
      const id = seal.rowIds[i] as string;
      const event = events.get(id);
      if (!event) {
        if (complete) return fail({ code: 'row_deleted', seal: seal.id, row: id, message: `row ${id} deleted (sealed by seal #${seal.id}, missing from the export)` });
        continue;
      }
      if (event.digest !== seal.rowDigests[i]) return fail({ code: 'row_changed', seal: seal.id, row: id, message: `row ${id} changed since seal #${seal.id}` });
    }
  }
  const inFile = new Set(seals.map((s) => s.id));
  for (const [id, event] of events) {
    if (sealed.has(id)) continue;
    if (event.seal !== null && inFile.has(event.seal)) {
      return fail({ code: 'row_inserted', seal: event.seal, row: id, message: `row ${id} inserted into the range of seal #${event.seal}` });
    }
    result.unsealed += 1;
  }
  if (options.expectDigest !== undefined) {
    const problem = truncationProblem(options.expectDigest, seals.some((s) => s.digest === options.expectDigest), result.last);
    if (problem) return fail(problem);
  }
  return result;
}
