/**
 * Tamper evidence for the audit log: seals, their signing key, and the verification walk.
 *
 * Which rows a seal takes. Transactions commit out of id order, so "every row above the last sealed one"
 * would skip a row that commits after a later one was sealed. Every row carries its transaction's id
 * (tx_id); a seal takes only rows whose transaction is below the oldest transaction still running
 * (pg_snapshot_xmin): those have all ended, so no row can appear below that point later. Rows are ordered by
 * (tx_id, seq) and each seal continues exactly where the previous one ended, so every row falls in exactly one
 * seal, at the latest once the transactions running when it was written have ended.
 *
 * A break the sealing job notices (the newest seal is older than one it saw, or no longer verifies) and a
 * failed verification are recorded as `audit.seal_broken`, the hook for alerting.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Db } from '../../db/client.js';
import { decrypt, encrypt } from '../../lib/crypto.js';
import { createAuditSealQueries, type AuditSealRow, type AuditSealSummary, type SealKey } from '../../queries/audit-seals.js';
import { AppError } from '../../errors/index.js';
import type { AuditService } from '../audit.js';
import { generateJwk, publicPart, type PrivateJwk } from '../signing-keys.js';
import { rowDigest, sealBodyOf, sealDigest, sealViewOf, toAuditItem, type SealView } from './canonical.js';
import { checkSealSignature, signSeal } from './signature.js';
import { checkSeal, compareSealedRows, truncationProblem, type AuditProblem } from './verify.js';

/** Rows per seal at most: keeps a seal row (two arrays of this length) well under a megabyte. */
export const MAX_ROWS_PER_SEAL = 5000;
/** Seals per run at most, so one run never holds a connection long; the next run continues. */
export const MAX_SEALS_PER_RUN = 20;
/** Seals read per query while verifying (each carries up to MAX_ROWS_PER_SEAL row references). */
const VERIFY_BATCH = 20;

export interface SealRunResult {
  /** False when another replica held the sealing lock. */
  ran: boolean;
  seals: Array<{ id: number; count: number; digest: string }>;
  /** A break noticed before sealing (also recorded as `audit.seal_broken`). */
  broken?: AuditProblem | undefined;
}

export interface VerifyResult {
  ok: boolean;
  problem?: AuditProblem | undefined;
  seals: number;
  rows: number;
  /** The newest seal: keep its digest outside the database and pass it to the next verification. */
  last?: { id: number; digest: string; sealed_at: string } | undefined;
  /** Rows written after the newest seal (sealed by the next run once their transactions have ended). */
  unsealed: number;
}

export interface AuditSealLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AuditSealServiceDeps {
  db: Db;
  /** Encrypts the audit signing key at rest (derived from KERYU_SECRET for this purpose only). */
  encryptionKey: Buffer;
  audit: AuditService;
  log: AuditSealLogger;
  now?: () => Date;
}

const keyAad = (kid: string) => `audit-signing-key:${kid}`;
const upperOf = (seal: AuditSealSummary | undefined): SealKey => (seal ? { tx: seal.upperTx, seq: seal.upperSeq } : { tx: 0, seq: 0 });

export function createAuditSealService(deps: AuditSealServiceDeps) {
  const now = deps.now ?? (() => new Date());
  const queries = createAuditSealQueries(deps.db);
  let signingKey: PrivateJwk | undefined;
  /** The newest seal this process has seen: a chain that later ends below it, or differs at it, was cut or rewritten. */
  let seen: { id: number; digest: string } | undefined;
  let reported: string | undefined;

  /** The private key that signs seals; created once (under a lock, so replicas starting together agree). */
  async function ensureSigningKey(): Promise<PrivateJwk> {
    if (signingKey) return signingKey;
    const stored = await queries.findAuditSigningKeys();
    let row = stored[stored.length - 1];
    if (!row) {
      const created = await deps.db.transaction(async (tx) => {
        const q = createAuditSealQueries(tx);
        await q.lockAuditSigningKeys();
        const existing = await q.findAuditSigningKeys();
        if (existing.length) return { row: existing[existing.length - 1], fresh: false };
        const jwk = generateJwk('ES256');
        const insert = { kid: jwk.kid, publicJwk: publicPart(jwk), privateJwkEncrypted: encrypt(deps.encryptionKey, JSON.stringify(jwk), keyAad(jwk.kid)), createdAt: now() };
        await q.insertAuditSigningKey(insert);
        return { row: insert, fresh: true };
      });
      row = created.row;
      if (created.fresh && row) {
        await deps.audit.record({ type: 'keys.generated', outcome: 'success', actor: { type: 'system' }, details: { purpose: 'audit', keys: [{ kid: row.kid, alg: 'ES256' }] } });
      }
    }
    if (!row) throw new Error('no audit signing key');
    signingKey = JSON.parse(decrypt(deps.encryptionKey, row.privateJwkEncrypted, keyAad(row.kid))) as PrivateJwk;
    return signingKey;
  }

  /**
   * The keys seals may be signed with, each proven ours: its private half decrypts with our secret and
   * matches the published half (a key added to the table by someone without the secret does not count).
   */
  async function trustedKeys(): Promise<Map<string, KeyObject>> {
    const keys = new Map<string, KeyObject>();
    for (const row of await queries.findAuditSigningKeys()) {
      try {
        const jwk = JSON.parse(decrypt(deps.encryptionKey, row.privateJwkEncrypted, keyAad(row.kid))) as JsonWebKey;
        const derived = createPublicKey(createPrivateKey({ key: jwk, format: 'jwk' })).export({ format: 'jwk' });
        if (derived.x === row.publicJwk.x && derived.y === row.publicJwk.y) keys.set(row.kid, createPublicKey({ key: derived, format: 'jwk' }));
      } catch {
        // not encrypted with our secret: not a key of ours
      }
    }
    return keys;
  }

  async function reportBreak(problem: AuditProblem, source: 'seal' | 'verify'): Promise<void> {
    deps.log.error({ problem, source }, 'audit chain broken');
    await deps.audit.record({ type: 'audit.seal_broken', outcome: 'failure', actor: { type: source === 'seal' ? 'system' : 'cli' }, details: { problem: problem.code, message: problem.message, seal: problem.seal, row: problem.row, source } });
  }

  /** What the job can check cheaply each run: the head did not move back or change, and still verifies. */
  async function checkHead(last: AuditSealSummary | undefined, keys: () => Promise<Map<string, KeyObject>>): Promise<AuditProblem | undefined> {
    if (seen && (!last || last.id < seen.id)) {
      return { code: 'truncated', seal: seen.id, message: `newest seals removed: seal #${seen.id} (${seen.digest}) was seen, the chain now ends at ${last ? `#${last.id}` : 'nothing'}` };
    }
    if (!last) return undefined;
    if (seen) {
      const earlier = last.id === seen.id ? last : await queries.findSealById(seen.id);
      if (!earlier) return { code: 'seal_removed', seal: seen.id, message: `seal #${seen.id} removed` };
      if (earlier.digest !== seen.digest) return { code: 'seal_changed', seal: seen.id, message: `seal #${seen.id} changed: its digest is no longer ${seen.digest}` };
    }
    const bad = await checkSealSignature(last.signature, last.kid, sealBodyOf(last), await keys());
    return bad ? { code: 'seal_changed', seal: last.id, message: `seal #${last.id} changed: ${bad}` } : undefined;
  }

  /**
   * One seal over the sealable rows above the newest seal, in one transaction under the sealing lock. What
   * this process has seen moves on only after the commit, so a failed insert never looks like a cut chain.
   */
  async function sealOnce(): Promise<{ ran: boolean; seal?: { id: number; count: number; digest: string }; broken?: AuditProblem | undefined }> {
    const key = await ensureSigningKey();
    const step = await deps.db.transaction(async (tx) => {
      const q = createAuditSealQueries(tx);
      if (!(await q.tryLockSealing())) return { ran: false };
      // The horizon is read before the rows: rows of transactions below it are all visible to what follows.
      const horizon = await q.findSealHorizon();
      const last = await q.findLastSeal();
      const broken = await checkHead(last, trustedKeys);
      const head = last ? { id: last.id, digest: last.digest } : undefined;
      const lower = upperOf(last);
      const rows = await q.findRowsToSeal(lower, horizon, MAX_ROWS_PER_SEAL);
      const final = rows[rows.length - 1];
      if (!final) return { ran: true, broken, head };
      const rowIds = rows.map((r) => r.id);
      const rowDigests = rows.map((r) => rowDigest(toAuditItem(r)));
      const fields = {
        id: (last?.id ?? 0) + 1,
        sealedAt: now(),
        lowerTx: lower.tx,
        lowerSeq: lower.seq,
        upperTx: final.txId,
        upperSeq: final.seq,
        firstSeq: rows.reduce((min, r) => Math.min(min, r.seq), final.seq),
        lastSeq: rows.reduce((max, r) => Math.max(max, r.seq), final.seq),
        rowCount: rows.length,
        digest: sealDigest(rowIds, rowDigests),
        previousDigest: last?.digest ?? null,
        kid: key.kid,
      };
      const signature = await signSeal(sealBodyOf({ ...fields, signature: '' }), key);
      await q.insertSeal({ ...fields, rowIds, rowDigests, signature });
      const seal = { id: fields.id, count: fields.rowCount, digest: fields.digest };
      return { ran: true, seal, broken, head: { id: seal.id, digest: seal.digest } };
    });
    if (step.head) seen = step.head;
    return step;
  }

  return {
    ensureSigningKey,

    /**
     * The sealing job's work: seals what can be sealed (at most MAX_SEALS_PER_RUN seals), logging each
     * seal's digest so a copy lives outside the database.
     */
    async sealPending(): Promise<SealRunResult> {
      const result: SealRunResult = { ran: false, seals: [] };
      for (let i = 0; i < MAX_SEALS_PER_RUN; i++) {
        const step = await sealOnce();
        if (!step.ran) break;
        result.ran = true;
        if (step.broken && !result.broken) {
          result.broken = step.broken;
          if (reported !== step.broken.message) {
            reported = step.broken.message;
            await reportBreak(step.broken, 'seal');
          }
        }
        if (!step.seal) break;
        result.seals.push(step.seal);
        deps.log.info({ audit_seal: step.seal }, 'audit rows sealed');
        if (step.seal.count < MAX_ROWS_PER_SEAL) break;
      }
      return result;
    },

    /** The public keys that verify seals (JWKS, RFC 7517). */
    async publicJwks(): Promise<{ keys: Array<Record<string, unknown>> }> {
      await ensureSigningKey();
      return { keys: (await queries.findAuditSigningKeys()).map((row) => row.publicJwk) };
    },

    /** Seals newest first, `{items, next_cursor}` (the cursor is the last seal's id). */
    async listSeals(page: { limit: number; cursor?: string | undefined }) {
      let before: number | undefined;
      if (page.cursor !== undefined) {
        before = /^[1-9]\d{0,9}$/.test(page.cursor) ? Number(page.cursor) : Number.NaN;
        if (Number.isNaN(before)) throw new AppError('invalid_request', 'cursor: not a cursor returned by this API');
      }
      const rows = await queries.listSeals(page.limit, before);
      const items = rows.slice(0, page.limit).map(sealViewOf);
      const lastItem = items[items.length - 1];
      return { items, next_cursor: rows.length > page.limit && lastItem ? String(lastItem.id) : null };
    },

    /** Seals with ids in [fromId, toId] with their row lists, for an export; at most `limit` per call. */
    async sealsForExport(fromId: number, toId: number, limit: number): Promise<Array<SealView & { rows: Array<[string, string]> }>> {
      const rows = await queries.findSealsBetween(fromId, toId, limit);
      return rows.map((seal) => ({ ...sealViewOf(seal), rows: seal.rowIds.map((id, i): [string, string] => [id, seal.rowDigests[i] ?? '']) }));
    },

    async lastSeal(): Promise<AuditSealSummary | undefined> {
      return queries.findLastSeal();
    },

    /**
     * Recomputes every seal from `fromSeal` (default: the first) and every row it covers, and stops at the first
     * problem. `expectDigest` is a seal digest the operator kept: it must still be in the chain.
     */
    async verifyChain(options: { fromSeal?: number | undefined; expectDigest?: string | undefined; actor?: 'cli' | 'system' } = {}): Promise<VerifyResult> {
      const keys = await trustedKeys();
      const result: VerifyResult = { ok: true, seals: 0, rows: 0, unsealed: 0 };
      let previous: AuditSealRow | undefined;
      let expectedId = options.fromSeal ?? 1;
      let kept = options.expectDigest === undefined;
      let problem: AuditProblem | undefined;
      walk: for (;;) {
        const batch = await queries.findSealsFrom(expectedId, VERIFY_BATCH);
        for (const seal of batch) {
          problem = await checkSeal(seal, previous, expectedId, keys);
          if (!problem) {
            const rows = await queries.findRowsInRange({ tx: seal.lowerTx, seq: seal.lowerSeq }, { tx: seal.upperTx, seq: seal.upperSeq });
            problem = compareSealedRows(seal, rows.map(toAuditItem));
            result.rows += rows.length;
          }
          if (problem) break walk;
          if (seal.digest === options.expectDigest) kept = true;
          result.seals += 1;
          previous = seal;
          expectedId = seal.id + 1;
        }
        if (batch.length < VERIFY_BATCH) break;
      }
      if (!problem && options.fromSeal !== undefined && !previous && options.fromSeal > 1) {
        problem = { code: 'seal_removed', seal: options.fromSeal, message: `seal #${options.fromSeal} not found` };
      }
      // A kept digest older than --from is not walked over; it only has to be there.
      if (!kept && options.expectDigest !== undefined && options.fromSeal !== undefined) {
        const keptId = await queries.findSealIdByDigest(options.expectDigest);
        kept = keptId !== undefined && keptId < options.fromSeal;
      }
      if (!problem && options.expectDigest !== undefined) {
        problem = truncationProblem(options.expectDigest, kept, previous ? { id: previous.id, digest: previous.digest } : undefined);
      }
      if (previous) result.last = { id: previous.id, digest: previous.digest, sealed_at: previous.sealedAt.toISOString() };
      result.unsealed = await queries.countRowsAbove(upperOf(previous ?? (await queries.findLastSeal())));
      if (problem) {
        result.ok = false;
        result.problem = problem;
        await reportBreak(problem, options.actor === 'system' ? 'seal' : 'verify');
      }
      await deps.audit.record({
        type: 'audit.verified',
        outcome: problem ? 'failure' : 'success',
        actor: { type: options.actor ?? 'cli' },
        details: { from_seal: options.fromSeal ?? 1, seals: result.seals, rows: result.rows, problem: problem?.code ?? null, last_seal: result.last ?? null },
      });
      return result;
    },
  };
}
export type AuditSealService = ReturnType<typeof createAuditSealService>;
