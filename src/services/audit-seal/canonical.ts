/**
 * The canonical encodings sealing and verification agree on, online and offline: an event as the API shows
 * it, its digest, a seal's digest over its rows, and the seal body its signature covers. Pure functions, so
 * an exported file can be checked with nothing but this module and the public key.
 */
import { createHash } from 'node:crypto';
import type { AuditEventRow } from '../../queries/audit-log.js';

/** One audit event as every reader sees it (API item, export line, digest input). */
export interface AuditItem {
  id: string;
  type: string;
  outcome: 'success' | 'failure';
  /** RFC 3339 in UTC with microseconds, exactly as stored. */
  at: string;
  actor: { type: string; id: string | null };
  subject: { type: string; id: string | null } | null;
  client_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

export function toAuditItem(row: AuditEventRow): AuditItem {
  return {
    id: row.id,
    type: row.type,
    outcome: row.outcome,
    at: row.at,
    actor: { type: row.actorType, id: row.actorId },
    subject: row.subjectType === null && row.subjectId === null ? null : { type: row.subjectType ?? '', id: row.subjectId },
    client_id: row.clientId,
    ip: row.ip,
    user_agent: row.userAgent,
    request_id: row.requestId,
    details: row.details,
  };
}

/** JSON with object keys sorted at every depth (numbers and strings as JSON.stringify writes them, as RFC 8785 does). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** SHA-256 (hex) of an event's canonical encoding: the members of AuditItem, nothing else. */
export function rowDigest(item: AuditItem): string {
  const { id, type, outcome, at, actor, subject, client_id, ip, user_agent, request_id, details } = item;
  return sha256Hex(canonicalJson({ id, type, outcome, at, actor, subject, client_id, ip, user_agent, request_id, details }));
}

/** SHA-256 (hex) over the seal's rows in seal order: one `id:rowDigest` line each. */
export function sealDigest(rowIds: readonly string[], rowDigests: readonly string[]): string {
  const hash = createHash('sha256');
  rowIds.forEach((id, i) => hash.update(`${id}:${rowDigests[i] ?? ''}\n`, 'utf8'));
  return hash.digest('hex');
}

/** What a seal states; its signature is a JWS over `canonicalJson(body)`. */
export interface SealBody {
  v: 1;
  id: number;
  sealed_at: string;
  /** Seal keys [tx_id, seq]: the rows above `lower` up to and including `upper`. */
  lower: [number, number];
  upper: [number, number];
  first_seq: number;
  last_seq: number;
  count: number;
  digest: string;
  previous_digest: string | null;
}

/** A seal as the API lists it and an export carries it (the row lists only in exports). */
export interface SealView extends Omit<SealBody, 'v'> {
  kid: string;
  signature: string;
}

export interface SealFields {
  id: number;
  sealedAt: Date;
  lowerTx: number;
  lowerSeq: number;
  upperTx: number;
  upperSeq: number;
  firstSeq: number;
  lastSeq: number;
  rowCount: number;
  digest: string;
  previousDigest: string | null;
  kid: string;
  signature: string;
}

export function sealBodyOf(seal: SealFields): SealBody {
  return {
    v: 1,
    id: seal.id,
    sealed_at: seal.sealedAt.toISOString(),
    lower: [seal.lowerTx, seal.lowerSeq],
    upper: [seal.upperTx, seal.upperSeq],
    first_seq: seal.firstSeq,
    last_seq: seal.lastSeq,
    count: seal.rowCount,
    digest: seal.digest,
    previous_digest: seal.previousDigest,
  };
}

export function sealViewOf(seal: SealFields): SealView {
  const { v: _version, ...body } = sealBodyOf(seal);
  return { ...body, kid: seal.kid, signature: seal.signature };
}

/** The inverse of sealViewOf (an exported seal back to the fields its body is computed from). */
export function sealFieldsOf(view: SealView): SealFields {
  return {
    id: view.id,
    sealedAt: new Date(view.sealed_at),
    lowerTx: view.lower[0],
    lowerSeq: view.lower[1],
    upperTx: view.upper[0],
    upperSeq: view.upper[1],
    firstSeq: view.first_seq,
    lastSeq: view.last_seq,
    rowCount: view.count,
    digest: view.digest,
    previousDigest: view.previous_digest,
    kid: view.kid,
    signature: view.signature,
  };
}
