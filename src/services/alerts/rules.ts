/**
 * The rules that turn audit events into alerts. Each rule reads only what the events and the database say,
 * writes details that name who and where (ids, addresses, counts) and never a secret, code or token; and
 * gives each alert a dedupe key derived from the events, so evaluating the same events twice raises nothing new.
 */
import { networkOf } from '../../lib/network.js';
import type { AuditEventRow } from '../../queries/alerts.js';
import type { AuditEventType } from '../audit.js';
import type { AlertCandidate } from './catalogue.js';

export interface StuffingThresholds {
  failures: number;
  accounts: number;
  windowSeconds: number;
}

export interface RuleContext {
  /** Every permission a role confers, through its parents too (empty when it no longer exists). */
  rolePermissions(roleIds: string[]): Promise<Set<string>>;
  roleIdsByNames(names: string[]): Promise<string[]>;
  loginFailuresBetween(from: Date, to: Date): Promise<Array<{ id: string; ip: string; identifierDigest: string | null; occurredAt: Date }>>;
  stuffing: StuffingThresholds;
}

/** Audit event types any rule reads; the evaluator selects only these. */
export const ruleEventTypes = [
  'login.locked',
  'token.reuse_detected',
  'account.compromise_reported',
  'mfa.factor_removed',
  'role.assigned',
  'role.updated',
  'grant.created',
  'login',
  'rate_limit.exceeded',
  'audit.seal_broken',
  'mfa.passkey_counter_regressed',
] as const satisfies readonly AuditEventType[];

const isAuthPermission = (p: string) => p.startsWith('auth.');
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Where an event came from, for every alert's details. */
function origin(e: AuditEventRow) {
  return { ip: e.ip ?? null, client_id: e.clientId ?? null, actor: { type: e.actorType, id: e.actorId ?? null }, at: e.occurredAt.toISOString() };
}

/** Alerts that follow from one event each. */
async function perEvent(e: AuditEventRow, ctx: RuleContext): Promise<AlertCandidate | undefined> {
  const d = obj(e.details);
  const once = (type: AlertCandidate['type']) => ({ type, dedupeKey: `${type}:${e.id}`, eventIds: [e.id] });
  switch (e.type) {
    case 'login.locked':
      return {
        ...once('account_locked'),
        groupKey: e.subjectId ?? '',
        summary: `A sign-in identifier was locked after ${num(d.failures) ?? 'repeated'} failed logins${e.ip ? ` (last attempt from ${e.ip})` : ''}.`,
        details: { identifier_key: e.subjectId ?? null, failures: num(d.failures) ?? null, locked_until: str(d.locked_until) ?? null, ...origin(e) },
      };
    case 'token.reuse_detected':
      return {
        ...once('token_reuse_detected'),
        groupKey: str(d.user_id) ?? e.subjectId ?? '',
        summary: `A refresh token or authorization code that was already used was presented again${e.ip ? ` from ${e.ip}` : ''}; the tokens it belongs to were revoked.`,
        details: { user_id: str(d.user_id) ?? null, subject: e.subjectId ? { type: e.subjectType, id: e.subjectId } : null, ...origin(e) },
      };
    case 'account.compromise_reported':
      if (e.outcome !== 'success') return undefined;
      return {
        ...once('compromise_reported'),
        groupKey: e.subjectId ?? '',
        summary: `A user reported a sign-in to their account as not theirs ("This wasn't me"); their sessions were ended.`,
        details: { user_id: e.subjectId ?? null, ...origin(e) },
      };
    case 'mfa.factor_removed':
      if (d.reset_by_admin !== true || e.outcome !== 'success') return undefined;
      return {
        ...once('mfa_reset_by_admin'),
        groupKey: e.subjectId ?? '',
        summary: `Every second factor of user ${e.subjectId ?? '(unknown)'} was removed by ${e.actorType}${e.actorId ? ` ${e.actorId}` : ''}.`,
        details: { user_id: e.subjectId ?? null, removed: num(d.count) ?? null, ...origin(e) },
      };
    case 'role.assigned': {
      if (e.outcome !== 'success') return undefined;
      const after = obj(d.after);
      const roleId = str(after.role_id);
      const gained = roleId ? [...(await ctx.rolePermissions([roleId]))].filter(isAuthPermission).sort() : [];
      if (!gained.length || d.before) return undefined;
      return {
        ...once('privilege_granted'),
        groupKey: `${e.subjectType ?? ''}:${e.subjectId ?? ''}`,
        summary: `${e.subjectType ?? 'subject'} ${e.subjectId ?? ''} was given role ${str(after.role) ?? roleId ?? ''}, which holds ${gained.join(', ')}.`,
        details: { subject: { type: e.subjectType, id: e.subjectId }, role: str(after.role) ?? null, role_id: roleId ?? null, permissions: gained, ...origin(e) },
      };
    }
    case 'role.updated': {
      if (e.outcome !== 'success') return undefined;
      const before = obj(d.before);
      const after = obj(d.after);
      const had = new Set(list(before.permissions));
      const direct = list(after.permissions).filter((p) => isAuthPermission(p) && !had.has(p));
      const oldParents = new Set(list(before.parents));
      const newParents = list(after.parents).filter((p) => !oldParents.has(p));
      const inherited = newParents.length ? [...(await ctx.rolePermissions(await ctx.roleIdsByNames(newParents)))].filter((p) => isAuthPermission(p) && !had.has(p)) : [];
      const gained = [...new Set([...direct, ...inherited])].sort();
      if (!gained.length) return undefined;
      return {
        ...once('privilege_granted'),
        groupKey: `role:${e.subjectId ?? ''}`,
        summary: `Role ${str(after.name) ?? e.subjectId ?? ''} was changed to hold ${gained.join(', ')}; everyone holding it gains them.`,
        details: { role: str(after.name) ?? null, role_id: e.subjectId ?? null, permissions: gained, added_parents: newParents, ...origin(e) },
      };
    }
    case 'grant.created': {
      const after = obj(d.after);
      const permission = str(after.permission);
      if (e.outcome !== 'success' || !permission || !isAuthPermission(permission)) return undefined;
      return {
        ...once('privilege_granted'),
        groupKey: `grant:${e.subjectId ?? ''}`,
        summary: `An object grant of ${permission} was created.`,
        details: { grant_id: e.subjectId ?? null, permission, user: after.user ?? null, role: after.role ?? null, object: after.object ?? null, ...origin(e) },
      };
    }
    case 'mfa.passkey_counter_regressed':
      return {
        ...once('passkey_clone_suspected'),
        groupKey: str(d.factor_id) ?? e.subjectId ?? '',
        summary: `A passkey of user ${e.subjectId ?? '(unknown)'} presented a signature counter not above the stored one (${num(d.presented_counter) ?? '?'} ≤ ${num(d.stored_counter) ?? '?'}): the sign-in was refused; the authenticator may have been cloned.`,
        details: { user_id: e.subjectId ?? null, factor_id: str(d.factor_id) ?? null, stored_counter: num(d.stored_counter) ?? null, presented_counter: num(d.presented_counter) ?? null, ...origin(e) },
      };
    case 'rate_limit.exceeded': {
      const limit = str(d.limit) ?? 'unknown';
      const source = str(d.source) ?? e.ip ?? '';
      const window = num(d.window_seconds) ?? 60;
      return {
        ...once('rate_limit_exceeded'),
        groupKey: `${limit}:${source}`,
        windowSeconds: window,
        summary: `Rate limit ${limit} was exceeded by ${source} (more than ${num(d.max) ?? '?'} requests in ${window} s); further requests are refused until the window ends.`,
        details: { limit, source, max: num(d.max) ?? null, window_seconds: window, path: str(d.path) ?? null, ...origin(e) },
      };
    }
    case 'audit.seal_broken': {
      // Written by the sealing job (source: seal) and `keryu audit verify` (source: verify).
      const seal = num(d.seal) ?? null;
      return {
        ...once('audit_tampering'),
        groupKey: seal === null ? '' : String(seal),
        summary: `The audit log failed verification: ${str(d.message) ?? str(d.problem) ?? 'a sealed range does not match its seal'}.`,
        details: { problem: str(d.problem) ?? null, message: str(d.message) ?? null, seal, row: str(d.row) ?? num(d.row) ?? null, found_by: str(d.source) ?? e.actorType, ...origin(e) },
      };
    }
    default:
      return undefined;
  }
}

/**
 * credential_stuffing: at least `failures` failed logins spanning at least `accounts` distinct identifiers
 * from one network (IPv4 /24, which includes one address, or IPv6 /64) within the window. Judged at each new
 * failure over the window that ends there; aggregated to one alert per network per window.
 */
async function stuffing(fresh: AuditEventRow[], ctx: RuleContext): Promise<AlertCandidate[]> {
  const triggers = fresh.filter((e) => e.type === 'login' && e.outcome === 'failure' && e.ip);
  if (!triggers.length) return [];
  const windowMs = ctx.stuffing.windowSeconds * 1000;
  const first = triggers[0]?.occurredAt.getTime() ?? 0;
  const last = triggers[triggers.length - 1]?.occurredAt.getTime() ?? 0;
  const failures = await ctx.loginFailuresBetween(new Date(first - windowMs), new Date(last));
  const byNetwork = new Map<string, typeof failures>();
  for (const f of failures) {
    const network = networkOf(f.ip);
    if (!network) continue;
    byNetwork.set(network, [...(byNetwork.get(network) ?? []), f]);
  }
  const out: AlertCandidate[] = [];
  const raised = new Set<string>();
  for (const t of triggers) {
    const network = networkOf(t.ip ?? undefined);
    if (!network || raised.has(network)) continue;
    const end = t.occurredAt.getTime();
    const inWindow = (byNetwork.get(network) ?? []).filter((f) => f.occurredAt.getTime() > end - windowMs && f.occurredAt.getTime() <= end);
    const identifiers = new Set(inWindow.map((f) => f.identifierDigest ?? f.id));
    if (inWindow.length < ctx.stuffing.failures || identifiers.size < ctx.stuffing.accounts) continue;
    raised.add(network);
    const addresses = [...new Set(inWindow.map((f) => f.ip))].sort();
    out.push({
      type: 'credential_stuffing',
      groupKey: network,
      dedupeKey: `credential_stuffing:${network}:${t.id}`,
      windowSeconds: ctx.stuffing.windowSeconds,
      summary: `${inWindow.length} failed logins for ${identifiers.size} different identifiers came from network ${network} within ${Math.round(ctx.stuffing.windowSeconds / 60)} minutes: likely credential stuffing.`,
      details: { network, failures: inWindow.length, identifiers: identifiers.size, addresses: addresses.slice(0, 20), window_seconds: ctx.stuffing.windowSeconds },
      eventIds: inWindow.slice(-100).map((f) => f.id),
    });
  }
  return out;
}

/** Every alert the events (each judged once, see the evaluator) call for. */
export async function evaluateRules(events: AuditEventRow[], ctx: RuleContext): Promise<AlertCandidate[]> {
  const out: AlertCandidate[] = [];
  for (const e of events) {
    const candidate = await perEvent(e, ctx);
    if (candidate) out.push(candidate);
  }
  out.push(...(await stuffing(events, ctx)));
  return out;
}
