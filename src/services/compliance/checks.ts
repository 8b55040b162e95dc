/**
 * The compliance catalogue: each check judges facts about the running configuration and the data, and names
 * where its rule comes from (RFC 9700 section, NIST SP 800-63B-4 section, OWASP ASVS 5.0 requirement; null where
 * that document has no matching rule). Checks are pure functions of the facts, so they are tested on crafted data.
 */
import { isLoopbackHttp } from '../../lib/network.js';

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface References {
  rfc9700: string | null;
  nist_800_63b: string | null;
  asvs_5_0: string | null;
}

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  /** What the verdict rests on: settings, and the clients, users or roles concerned. */
  evidence: Record<string, unknown>;
  references: References;
}

export interface ClientFacts {
  clientId: string;
  metadata: Record<string, unknown>;
  hasSecret: boolean;
  createdAt: Date;
}

/** The latest seal of the audit log, as the sealing job reports it (the seam to the audit sealing). */
export interface AuditSealStatus {
  /** When the newest seal was made; undefined when nothing was sealed yet. */
  latestSealAt: Date | undefined;
  /** Whether the chain of seals and the rows they cover verified. */
  chainVerified: boolean;
  /** The first problem found, when it did not verify. */
  problem?: string | undefined;
  /** The sealing interval in seconds (sealing is current when the newest seal is younger than two of them). */
  intervalSeconds: number;
}

export interface ComplianceFacts {
  now: Date;
  production: boolean;
  issuer: string;
  secureCookies: boolean;
  developmentSecret: boolean;
  mfaRequiredForAll: boolean;
  passwordMinLength: number;
  lockAfter: number;
  rateLimitAuth: number;
  refreshTokenAbsoluteTtl: number;
  secretMaxAge: number;
  signingKeyMaxAge: number;
  cleanupInterval: number;
  alertChannels: { webhooks: number; emails: number };
  clients: ClientFacts[];
  /** Roles holding an auth.* permission (through parents too), whether any role in their closure requires MFA. */
  privilegedRoles: Array<{ name: string; mfaRequired: boolean; superuser: boolean; holders: number }>;
  /** Enabled users holding a privileged role. */
  privilegedUsers: Array<{ id: string; email: string; roles: string[]; superuser: boolean; hasFactor: boolean; lastSignInAt: Date | undefined; createdAt: Date }>;
  /** Clients able to obtain tokens for the management API: first_party clients and service accounts with auth.* roles. */
  apiClients: Array<{ clientId: string; reason: 'first_party' | 'service_account' }>;
  signingKeys: Array<{ kid: string; alg: string; createdAt: Date }>;
  lastCleanupAt: Date | undefined;
  /** undefined: the audit sealing is not available in this build. */
  seal: AuditSealStatus | undefined;
}

const refs = (rfc9700: string | null, nist: string | null, asvs: string | null): References => ({ rfc9700, nist_800_63b: nist, asvs_5_0: asvs });
const DAY = 86_400;
/** Admin accounts unused this long should be disabled or their roles removed. */
export const ADMIN_INACTIVITY_DAYS = 90;
/** More superusers than this widens who can do everything; review them. */
export const MAX_SUPERUSERS = 3;

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function redirectProblem(uri: string): string | undefined {
  if (uri.includes('*')) return 'wildcard';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'not a URL';
  }
  if (url.protocol === 'https:' || isLoopbackHttp(url)) return undefined;
  if (url.protocol === 'http:') return 'http outside loopback';
  // A private-use scheme of a native app (RFC 8252 §7.1) is fine; schemes a browser runs are not.
  if (['javascript:', 'data:', 'file:', 'vbscript:'].includes(url.protocol)) return `${url.protocol} scheme`;
  return undefined;
}

type Check = { id: string; title: string; references: References; run(f: ComplianceFacts): { status: CheckStatus; evidence: Record<string, unknown> } };

export const complianceChecks: Check[] = [
  {
    id: 'pkce_required',
    title: 'PKCE is required for every client using the authorization code grant',
    references: refs('§2.1.1', null, '10.4.6'),
    run(f) {
      const exempt = f.clients
        .filter((c) => strings(c.metadata.grant_types).includes('authorization_code') && c.metadata.require_pkce === false && c.metadata.token_endpoint_auth_method !== 'none')
        .map((c) => c.clientId);
      return { status: exempt.length ? 'fail' : 'pass', evidence: { exempt_clients: exempt, method: 'S256 only' } };
    },
  },
  {
    id: 'refresh_token_rotation',
    title: 'Refresh tokens rotate on every use, reuse revokes the family, and they have an absolute lifetime',
    references: refs('§2.2.2', null, '10.4.5, 10.4.8'),
    run(f) {
      return { status: f.refreshTokenAbsoluteTtl > 0 ? 'pass' : 'fail', evidence: { rotation: 'every use', reuse: 'revokes the token family', absolute_lifetime_seconds: f.refreshTokenAbsoluteTtl } };
    },
  },
  {
    id: 'no_implicit_or_password_grant',
    title: 'No client uses the implicit or the resource owner password credentials grant',
    references: refs('§2.1.2, §2.4', null, '10.4.4'),
    run(f) {
      const offending = f.clients
        .filter((c) => strings(c.metadata.grant_types).some((g) => g === 'implicit' || g === 'password') || strings(c.metadata.response_types).some((r) => r.split(' ').includes('token')))
        .map((c) => c.clientId);
      return { status: offending.length ? 'fail' : 'pass', evidence: { clients: offending } };
    },
  },
  {
    id: 'redirect_uris',
    title: 'Redirect URIs are exact, use https (http only on loopback) and contain no wildcard',
    references: refs('§2.1, §2.6', null, '10.4.1'),
    run(f) {
      const problems = f.clients.flatMap((c) =>
        [...strings(c.metadata.redirect_uris), ...strings(c.metadata.post_logout_redirect_uris)].flatMap((uri) => {
          const problem = redirectProblem(uri);
          return problem ? [{ client_id: c.clientId, uri, problem }] : [];
        }),
      );
      return { status: problems.length ? 'fail' : 'pass', evidence: { problems } };
    },
  },
  {
    id: 'client_secret_age',
    title: 'Client secrets are younger than COMPLIANCE_SECRET_MAX_AGE',
    references: refs(null, null, '13.3.4'),
    run(f) {
      const old = f.clients
        .filter((c) => c.hasSecret && (f.now.getTime() - c.createdAt.getTime()) / 1000 > f.secretMaxAge)
        .map((c) => ({ client_id: c.clientId, issued_at: c.createdAt.toISOString() }));
      return { status: old.length ? 'warn' : 'pass', evidence: { max_age_days: Math.floor(f.secretMaxAge / DAY), clients: old } };
    },
  },
  {
    id: 'password_policy',
    title: 'Password policy at or above NIST minimums (8 characters at least, no composition rules, blocklist)',
    references: refs(null, '§3.1.1.2', '6.2.1'),
    run(f) {
      return { status: f.passwordMinLength >= 8 ? 'pass' : 'fail', evidence: { min_length: f.passwordMinLength, composition_rules: false, max_length_at_least: 64, weak_password_check: 'zxcvbn' } };
    },
  },
  {
    id: 'brute_force_protection',
    title: 'Failed sign-ins are limited per account (at most 100 consecutive failures) and per address',
    references: refs(null, '§3.2.2', '6.3.1'),
    run(f) {
      const status: CheckStatus = f.lockAfter > 100 ? 'fail' : f.rateLimitAuth === 0 ? 'warn' : 'pass';
      return { status, evidence: { lock_after: f.lockAfter, rate_limit_auth: f.rateLimitAuth } };
    },
  },
  {
    id: 'admin_roles_require_mfa',
    title: 'Every role holding an auth.* permission requires MFA',
    references: refs(null, '§2.2.1', '6.3.2'),
    run(f) {
      // Held by someone: fail; held by nobody yet: warn (the first assignment would be a failure).
      const without = f.mfaRequiredForAll ? [] : f.privilegedRoles.filter((r) => !r.mfaRequired);
      const status: CheckStatus = without.some((r) => r.holders > 0) ? 'fail' : without.length ? 'warn' : 'pass';
      return { status, evidence: { mfa_required_for_everyone: f.mfaRequiredForAll, roles_without_mfa: without.map((r) => ({ role: r.name, holders: r.holders })) } };
    },
  },
  {
    id: 'admins_without_factor',
    title: 'Every user holding an auth.* permission has a second factor',
    references: refs(null, '§2.2.1', '6.3.2'),
    run(f) {
      const users = f.privilegedUsers.filter((u) => !u.hasFactor).map((u) => ({ id: u.id, email: u.email, roles: u.roles }));
      return { status: users.length ? 'fail' : 'pass', evidence: { users } };
    },
  },
  {
    id: 'superusers',
    title: `At most ${MAX_SUPERUSERS} superusers`,
    references: refs(null, null, null),
    run(f) {
      const superusers = f.privilegedUsers.filter((u) => u.superuser).map((u) => ({ id: u.id, email: u.email }));
      return { status: superusers.length > MAX_SUPERUSERS ? 'warn' : 'pass', evidence: { count: superusers.length, users: superusers } };
    },
  },
  {
    id: 'inactive_admins',
    title: `No admin account without a sign-in for ${ADMIN_INACTIVITY_DAYS} days`,
    references: refs(null, null, null),
    run(f) {
      const cutoff = f.now.getTime() - ADMIN_INACTIVITY_DAYS * DAY * 1000;
      const users = f.privilegedUsers
        .filter((u) => (u.lastSignInAt ?? u.createdAt).getTime() < cutoff)
        .map((u) => ({ id: u.id, email: u.email, last_sign_in_at: u.lastSignInAt?.toISOString() ?? null }));
      return { status: users.length ? 'warn' : 'pass', evidence: { users } };
    },
  },
  {
    id: 'root_secret',
    title: 'KERYU_SECRET is set (not the generated development secret)',
    references: refs(null, null, '13.3.1'),
    run(f) {
      return { status: !f.developmentSecret ? 'pass' : f.production ? 'fail' : 'warn', evidence: { source: f.developmentSecret ? 'development secret file' : 'KERYU_SECRET' } };
    },
  },
  {
    id: 'issuer_https',
    title: 'The issuer is served over https in production',
    references: refs('§2.6', '§2.2.2', '12.2.1'),
    run(f) {
      const https = f.issuer.startsWith('https:');
      return { status: https ? 'pass' : f.production ? 'fail' : 'warn', evidence: { issuer: f.issuer, production: f.production } };
    },
  },
  {
    id: 'secure_cookies',
    title: 'Cookies are Secure (sent only over TLS)',
    references: refs(null, '§5.1.1', '3.3.1'),
    run(f) {
      return { status: f.secureCookies ? 'pass' : f.production ? 'fail' : 'warn', evidence: { secure: f.secureCookies } };
    },
  },
  {
    id: 'signing_key_age',
    title: 'Signing keys in use are younger than the rotation policy (SIGNING_KEY_MAX_AGE)',
    references: refs(null, null, '11.1.1'),
    run(f) {
      const overdue = f.signingKeys
        .filter((k) => (f.now.getTime() - k.createdAt.getTime()) / 1000 > f.signingKeyMaxAge)
        .map((k) => ({ kid: k.kid, alg: k.alg, created_at: k.createdAt.toISOString() }));
      return { status: overdue.length ? 'warn' : 'pass', evidence: { max_age_days: Math.floor(f.signingKeyMaxAge / DAY), overdue, keys: f.signingKeys.map((k) => k.kid) } };
    },
  },
  {
    id: 'audit_chain',
    title: 'The audit chain is intact and sealing is current',
    references: refs(null, null, '16.4.2'),
    run(f) {
      if (!f.seal) return { status: 'warn', evidence: { sealing: 'sealing not available' } };
      const age = f.seal.latestSealAt ? (f.now.getTime() - f.seal.latestSealAt.getTime()) / 1000 : undefined;
      const status: CheckStatus = !f.seal.chainVerified ? 'fail' : age === undefined || age > 2 * f.seal.intervalSeconds ? 'warn' : 'pass';
      return { status, evidence: { chain_verified: f.seal.chainVerified, problem: f.seal.problem ?? null, latest_seal_at: f.seal.latestSealAt?.toISOString() ?? null, interval_seconds: f.seal.intervalSeconds } };
    },
  },
  {
    id: 'alert_channels',
    title: 'Security alerts have somewhere to go (ALERT_WEBHOOK_URL or ALERT_EMAIL)',
    references: refs(null, null, '16.4.3'),
    run(f) {
      return { status: f.alertChannels.webhooks + f.alertChannels.emails > 0 ? 'pass' : 'warn', evidence: f.alertChannels };
    },
  },
  {
    id: 'cleanup_recent',
    title: 'The expired-row cleanup ran within two intervals',
    references: refs(null, null, null),
    run(f) {
      const evidence = { interval_seconds: f.cleanupInterval, last_run_at: f.lastCleanupAt?.toISOString() ?? null };
      if (f.cleanupInterval === 0) return { status: 'warn', evidence: { ...evidence, note: 'CLEANUP_INTERVAL=0: run "keryu cleanup" on a schedule' } };
      const fresh = f.lastCleanupAt && f.now.getTime() - f.lastCleanupAt.getTime() <= 2 * f.cleanupInterval * 1000;
      return { status: fresh ? 'pass' : 'warn', evidence };
    },
  },
  {
    id: 'management_api_clients',
    title: 'Only first-party clients and service accounts can obtain the management API; none is hosted elsewhere',
    references: refs('§2.3', null, '10.4.11'),
    run(f) {
      const issuerOrigin = new URL(f.issuer).origin;
      const elsewhere = f.apiClients
        .filter((c) => c.reason === 'first_party')
        .flatMap((c) => {
          const client = f.clients.find((x) => x.clientId === c.clientId);
          const foreign = strings(client?.metadata.redirect_uris).filter((uri) => {
            try {
              const u = new URL(uri);
              // A native app's private-use scheme or loopback redirect runs on the user's device: not "elsewhere".
              return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin !== issuerOrigin && !isLoopbackHttp(u);
            } catch {
              return true;
            }
          });
          return foreign.length ? [{ client_id: c.clientId, redirect_uris: foreign }] : [];
        });
      return { status: elsewhere.length ? 'warn' : 'pass', evidence: { clients: f.apiClients, first_party_on_other_origins: elsewhere } };
    },
  },
];

export function runChecks(facts: ComplianceFacts): CheckResult[] {
  return complianceChecks.map((c) => ({ id: c.id, title: c.title, ...c.run(facts), references: c.references }));
}
