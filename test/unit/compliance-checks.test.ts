/** Each compliance check on crafted facts: the clean case passes, the crafted fault fails or warns with its evidence. */
import t from 'tap';
import { runChecks, type ComplianceFacts } from '../../src/services/compliance/checks.js';

const now = new Date('2026-12-03T10:00:00Z');

function facts(over: Partial<ComplianceFacts> = {}): ComplianceFacts {
  return {
    now,
    production: true,
    issuer: 'https://id.example.com/oidc',
    secureCookies: true,
    developmentSecret: false,
    mfaRequiredForAll: false,
    passwordMinLength: 12,
    lockAfter: 20,
    rateLimitAuth: 120,
    refreshTokenAbsoluteTtl: 90 * 86400,
    secretMaxAge: 365 * 86400,
    signingKeyMaxAge: 90 * 86400,
    cleanupInterval: 300,
    alertChannels: { webhooks: 1, emails: 0 },
    clients: [{ clientId: 'web', metadata: { grant_types: ['authorization_code'], redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1/cb', 'com.example.app:/cb'], response_types: ['code'] }, hasSecret: true, createdAt: now }],
    privilegedRoles: [{ name: 'admin', mfaRequired: true, superuser: true, holders: 1 }],
    privilegedUsers: [{ id: 'u1', email: 'root@example.com', roles: ['admin'], superuser: true, hasFactor: true, lastSignInAt: now, createdAt: now }],
    apiClients: [{ clientId: 'console', reason: 'first_party' }],
    signingKeys: [{ kid: 'k1', alg: 'ES256', createdAt: now }],
    lastCleanupAt: now,
    seal: { latestSealAt: now, chainVerified: true, intervalSeconds: 60 },
    ...over,
  };
}

const status = (f: ComplianceFacts) => Object.fromEntries(runChecks(f).map((c) => [c.id, c.status]));
const check = (f: ComplianceFacts, id: string) => runChecks(f).find((c) => c.id === id);

t.test('a clean production setup passes every check', async (t) => {
  const all = runChecks(facts());
  t.ok(all.length >= 19);
  t.same(all.filter((c) => c.status !== 'pass').map((c) => c.id), []);
  for (const c of all) t.ok(c.references.rfc9700 || c.references.nist_800_63b || c.references.asvs_5_0 || ['superusers', 'inactive_admins', 'cleanup_recent'].includes(c.id), `${c.id} names its sources`);
});

t.test('each fault is found', async (t) => {
  const web = facts().clients[0]!;
  t.equal(status(facts({ clients: [{ ...web, metadata: { ...web.metadata, grant_types: ['authorization_code', 'implicit'] } }] })).no_implicit_or_password_grant, 'fail');
  t.equal(status(facts({ clients: [{ ...web, metadata: { ...web.metadata, grant_types: ['password'] } }] })).no_implicit_or_password_grant, 'fail');
  t.equal(status(facts({ clients: [{ ...web, metadata: { ...web.metadata, response_types: ['code token'] } }] })).no_implicit_or_password_grant, 'fail');
  t.same(check(facts({ clients: [{ ...web, metadata: { ...web.metadata, redirect_uris: ['http://app.example.com/cb', 'javascript:alert(1)'] } }] }), 'redirect_uris')?.evidence.problems, [
    { client_id: 'web', uri: 'http://app.example.com/cb', problem: 'http outside loopback' },
    { client_id: 'web', uri: 'javascript:alert(1)', problem: 'javascript: scheme' },
  ]);
  t.equal(status(facts({ clients: [{ ...web, metadata: { ...web.metadata, require_pkce: false, token_endpoint_auth_method: 'none' } }] })).pkce_required, 'pass', 'public clients always use PKCE');
  t.equal(status(facts({ lockAfter: 101 })).brute_force_protection, 'fail', 'NIST: at most 100 consecutive failures');
  t.equal(status(facts({ rateLimitAuth: 0 })).brute_force_protection, 'warn');
  t.equal(status(facts({ refreshTokenAbsoluteTtl: 0 })).refresh_token_rotation, 'fail');
  t.equal(status(facts({ developmentSecret: true })).root_secret, 'fail');
  t.equal(status(facts({ developmentSecret: true, production: false })).root_secret, 'warn');
  t.equal(status(facts({ issuer: 'http://id.example.com/oidc' })).issuer_https, 'fail');
  t.equal(status(facts({ secureCookies: false })).secure_cookies, 'fail');
  t.equal(status(facts({ alertChannels: { webhooks: 0, emails: 0 } })).alert_channels, 'warn');
  t.equal(status(facts({ cleanupInterval: 0 })).cleanup_recent, 'warn');
  t.equal(status(facts({ lastCleanupAt: new Date(now.getTime() - 601_000) })).cleanup_recent, 'warn');
  t.equal(status(facts({ seal: undefined })).audit_chain, 'warn');
  t.equal(status(facts({ privilegedRoles: [{ name: 'ops', mfaRequired: false, superuser: false, holders: 2 }] })).admin_roles_require_mfa, 'fail');
  t.equal(status(facts({ mfaRequiredForAll: true, privilegedRoles: [{ name: 'ops', mfaRequired: false, superuser: false, holders: 2 }] })).admin_roles_require_mfa, 'pass', 'MFA_REQUIRED covers every role');
  const many = Array.from({ length: 4 }, (_, i) => ({ ...facts().privilegedUsers[0]!, id: `u${i}` }));
  t.equal(status(facts({ privilegedUsers: many })).superusers, 'warn');
  const elsewhere = facts({ clients: [{ ...web, clientId: 'console', metadata: { ...web.metadata, first_party: true } }] });
  t.same(check(elsewhere, 'management_api_clients')?.evidence.first_party_on_other_origins, [{ client_id: 'console', redirect_uris: ['https://app.example.com/cb'] }]);
  t.equal(status(elsewhere).management_api_clients, 'warn');
});
