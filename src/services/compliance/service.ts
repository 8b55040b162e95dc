/**
 * The compliance report: gathers the facts (configuration, clients, roles and their holders, keys, job runs,
 * the audit seal) and runs the catalogue (checks.ts). A failing check raises `compliance_failed`, at most
 * once a day per check (the alert's dedupe key is the check id and the UTC date).
 */
import type { Db } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { createComplianceQueries } from '../../queries/compliance.js';
import { createRbacQueries } from '../../queries/rbac.js';
import type { AlertService } from '../alerts/service.js';
import { FIRST_PARTY_METADATA } from '../api-scopes.js';
import { SUPERUSER } from '../rbac/effective.js';
import { runChecks, type AuditSealStatus, type CheckResult, type ComplianceFacts } from './checks.js';

/** The name under which the cleanup job records its runs (see jobs/cleanup.ts). */
export const CLEANUP_JOB = 'cleanup';

export type ComplianceSettings = Pick<
  ComplianceFacts,
  | 'production'
  | 'issuer'
  | 'secureCookies'
  | 'mfaRequiredForAll'
  | 'passwordMinLength'
  | 'lockAfter'
  | 'rateLimitAuth'
  | 'refreshTokenAbsoluteTtl'
  | 'secretMaxAge'
  | 'signingKeyMaxAge'
  | 'cleanupInterval'
  | 'alertChannels'
>;

/**
 * The audit_chain check's view of the audit sealing: the newest seal's time from the seal service, and whether
 * a break it reported (sealing job or `keryu audit verify`) is still uncleared by a later successful verification.
 * Cheap on purpose (no recomputation of the chain): the sealing job checks the chain's head on every run.
 */
export function auditSealStatusOf(deps: { db: Db; lastSealAt: () => Promise<Date | undefined>; intervalSeconds: number }): () => Promise<AuditSealStatus> {
  return async () => {
    const broken = await createComplianceQueries(deps.db).findUnclearedSealBreak();
    return { latestSealAt: await deps.lastSealAt(), chainVerified: !broken, problem: broken?.message ?? undefined, intervalSeconds: deps.intervalSeconds };
  };
}

export interface ComplianceReport {
  generated_at: string;
  summary: { pass: number; warn: number; fail: number };
  checks: CheckResult[];
}

export function createComplianceService(deps: {
  db: Db;
  clock: Clock;
  settings: ComplianceSettings;
  /** Whether the root secret is the generated development one. */
  developmentSecret: () => Promise<boolean>;
  /** The audit sealing's status; absent until the sealing is wired in (the check then warns). */
  sealStatus?: (() => Promise<AuditSealStatus>) | undefined;
  alerts: Pick<AlertService, 'raise'>;
}) {
  async function gather(): Promise<ComplianceFacts> {
    const now = deps.clock();
    const q = createComplianceQueries(deps.db);
    const rbac = createRbacQueries(deps.db);
    const [clients, roles] = await Promise.all([q.listClients(), q.listRoles()]);
    const mfaByRole = new Map(roles.map((r) => [r.id, r.mfaRequired]));
    const privileged: Array<{ id: string; name: string; mfaRequired: boolean; superuser: boolean }> = [];
    for (const role of roles) {
      const closure = await rbac.findRoleClosure([role.id]);
      const auth = [...closure.permissions].filter((p) => p.startsWith('auth.'));
      if (!auth.length) continue;
      privileged.push({ id: role.id, name: role.name, mfaRequired: [...closure.roleIds].some((id) => mfaByRole.get(id)), superuser: closure.permissions.has(SUPERUSER) });
    }
    const holders = await q.findActiveHoldersOfRoles(privileged.map((r) => r.id));
    const userIds = [...new Set(holders.map((h) => h.userId))];
    const [withFactor, lastSignIns] = await Promise.all([q.findUsersWithFactor(userIds), q.findLastSignIns(userIds)]);
    const roleById = new Map(privileged.map((r) => [r.id, r]));
    const privilegedUsers = userIds.map((id) => {
      const mine = holders.filter((h) => h.userId === id);
      const first = mine[0];
      return {
        id,
        email: first?.email ?? '',
        createdAt: first?.createdAt ?? now,
        roles: mine.map((h) => roleById.get(h.roleId)?.name ?? h.roleId).sort(),
        superuser: mine.some((h) => roleById.get(h.roleId)?.superuser),
        hasFactor: withFactor.has(id),
        lastSignInAt: lastSignIns.get(id),
      };
    });
    const serviceAccounts = await q.findClientsHoldingRoles(privileged.map((r) => r.id));
    const apiClients = [
      ...clients.filter((c) => c.metadata[FIRST_PARTY_METADATA] === true).map((c) => ({ clientId: c.clientId, reason: 'first_party' as const })),
      ...serviceAccounts.map((clientId) => ({ clientId, reason: 'service_account' as const })),
    ];
    return {
      ...deps.settings,
      now,
      developmentSecret: await deps.developmentSecret(),
      clients,
      privilegedRoles: privileged.map(({ id, name, mfaRequired, superuser }) => ({ name, mfaRequired, superuser, holders: new Set(holders.filter((h) => h.roleId === id).map((h) => h.userId)).size })),
      privilegedUsers,
      apiClients,
      signingKeys: await q.findCurrentSigningKeys(now),
      lastCleanupAt: (await q.findJobRun(CLEANUP_JOB))?.lastRunAt,
      seal: deps.sealStatus ? await deps.sealStatus() : undefined,
    };
  }

  return {
    /** Runs every check; failing ones raise `compliance_failed` (once a day per check). */
    async report(): Promise<ComplianceReport> {
      const facts = await gather();
      const checks = runChecks(facts);
      const day = facts.now.toISOString().slice(0, 10);
      const failed = checks.filter((c) => c.status === 'fail');
      if (failed.length) {
        await deps.alerts.raise(
          failed.map((c) => ({
            type: 'compliance_failed',
            groupKey: c.id,
            dedupeKey: `compliance_failed:${c.id}:${day}`,
            summary: `Compliance check failed: ${c.title}.`,
            details: { check: c.id, title: c.title, evidence: c.evidence, references: c.references },
            eventIds: [],
          })),
        );
      }
      const count = (s: CheckResult['status']) => checks.filter((c) => c.status === s).length;
      return { generated_at: facts.now.toISOString(), summary: { pass: count('pass'), warn: count('warn'), fail: count('fail') }, checks };
    },
  };
}
export type ComplianceService = ReturnType<typeof createComplianceService>;
