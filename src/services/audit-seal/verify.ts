/**
 * The checks `keryu audit verify` runs, shared by the database walk and the offline check of an export.
 * Each returns the first problem it finds, named precisely, or undefined. Problems come in chain order:
 * a seal missing or changed, then inside a seal its rows changed, deleted or inserted.
 */
import type { KeyObject } from 'node:crypto';
import { rowDigest, sealBodyOf, sealDigest, type AuditItem, type SealFields } from './canonical.js';
import { checkSealSignature } from './signature.js';

export const auditProblemCodes = ['seal_removed', 'seal_changed', 'row_changed', 'row_deleted', 'row_inserted', 'truncated'] as const;
export type AuditProblemCode = (typeof auditProblemCodes)[number];

export interface AuditProblem {
  code: AuditProblemCode;
  /** One line for an operator: what is wrong, where. */
  message: string;
  seal?: number;
  row?: string;
}

export interface SealWithRows extends SealFields {
  rowIds: readonly string[];
  rowDigests: readonly string[];
}

/**
 * A seal on its own and against its predecessor (when known): the chain has no gap, the signature vouches
 * for the body, the digest matches the row list, and the range continues the previous one.
 */
export async function checkSeal(seal: SealWithRows, previous: SealFields | undefined, expectedId: number | undefined, keys: Map<string, KeyObject>): Promise<AuditProblem | undefined> {
  if (expectedId !== undefined && seal.id !== expectedId) {
    return { code: 'seal_removed', seal: expectedId, message: `seal #${expectedId} removed (the chain continues with seal #${seal.id})` };
  }
  const changed = (why: string): AuditProblem => ({ code: 'seal_changed', seal: seal.id, message: `seal #${seal.id} changed: ${why}` });
  const bad = await checkSealSignature(seal.signature, seal.kid, sealBodyOf(seal), keys);
  if (bad) return changed(bad);
  if (seal.rowIds.length !== seal.rowCount || seal.rowDigests.length !== seal.rowCount) return changed('its row list does not hold the sealed count');
  if (sealDigest(seal.rowIds, seal.rowDigests) !== seal.digest) return changed('its row list does not match the signed digest');
  if (previous) {
    if (seal.previousDigest !== previous.digest) return changed(`it does not chain to seal #${previous.id}`);
    if (seal.lowerTx !== previous.upperTx || seal.lowerSeq !== previous.upperSeq) return changed(`its range does not continue seal #${previous.id}`);
  } else if (expectedId === 1 && (seal.previousDigest !== null || seal.lowerTx !== 0 || seal.lowerSeq !== 0)) {
    return changed('the first seal names a predecessor');
  }
  return undefined;
}

/** The rows a seal's range holds now, against the rows it sealed (both in seal order). */
export function compareSealedRows(seal: SealWithRows, rows: readonly AuditItem[]): AuditProblem | undefined {
  const current = new Map(rows.map((item) => [item.id, rowDigest(item)]));
  for (let i = 0; i < seal.rowIds.length; i++) {
    const id = seal.rowIds[i] as string;
    const digest = current.get(id);
    if (digest === undefined) return { code: 'row_deleted', seal: seal.id, row: id, message: `row ${id} deleted (sealed by seal #${seal.id})` };
    if (digest !== seal.rowDigests[i]) return { code: 'row_changed', seal: seal.id, row: id, message: `row ${id} changed since seal #${seal.id}` };
  }
  const sealed = new Set(seal.rowIds);
  const extra = rows.find((item) => !sealed.has(item.id));
  if (extra) return { code: 'row_inserted', seal: seal.id, row: extra.id, message: `row ${extra.id} inserted into the range of seal #${seal.id}` };
  return undefined;
}

/** The operator's kept digest must still be in the chain; otherwise the newest seals (and their rows) were cut off. */
export function truncationProblem(expectDigest: string, found: boolean, last: { id: number; digest: string } | undefined): AuditProblem | undefined {
  if (found) return undefined;
  return {
    code: 'truncated',
    message: `newest rows truncated: the kept seal digest ${expectDigest} is not in the chain (newest seal: ${last ? `#${last.id} ${last.digest}` : 'none'})`,
  };
}
