/**
 * The compliance report on crafted data: each check passes on a clean setup and fails (or warns) with the
 * clients, users or settings at fault; a failing check raises compliance_failed at most once a day; the API
 * needs auth.audit.read; the CLI prints a table or JSON and exits non-zero on a failure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { runCli } from '../../src/cli.js';
import { runCleanup } from '../../src/jobs/cleanup.js';
import type { CheckResult } from '../../src/services/compliance/checks.js';
import { createComplianceService } from '../../src/services/compliance/service.js';
import { api, manualClock, seedAuthUser } from '../helpers/auth.js';
import { onPostgres } from '../helpers/db.js';
import { assignRoles, userWithToken } from '../helpers/rbac.js';
import { TEST_SECRET } from '../helpers/defaults.js';
import { startServer } from '../helpers/server.js';

const byId = (checks: CheckResult[]) => Object.fromEntries(checks.map((c) => [c.id, c]));

t.test('checks on crafted data, compliance_failed once a day, the API', async (t) => {
  const clock = manualClock();
  const server = await startServer({ clock, env: { ALERT_INTERVAL: '0', ALERT_EMAIL: 'soc@example.com' } });
  t.teardown(() => server.close());
  const services = server.app.keryu.services;
  const db = server.db.database.db;

  await runCleanup(db, clock());
  const clean = byId((await services.compliance.report()).checks);
  for (const id of ['pkce_required', 'no_implicit_or_password_grant', 'redirect_uris', 'admins_without_factor', 'cleanup_recent', 'alert_channels', 'refresh_token_rotation', 'password_policy', 'brute_force_protection', 'client_secret_age', 'signing_key_age', 'superusers', 'root_secret']) {
    t.equal(clean[id]?.status, 'pass', `${id} passes on a clean setup`);
  }
  t.equal(clean.admin_roles_require_mfa?.status, 'warn', 'the built-in admin role does not require MFA, but nobody holds it yet');
  t.equal(clean.issuer_https?.status, 'warn', 'http issuer outside production: warn');
  t.equal(clean.secure_cookies?.status, 'warn');
  t.equal(clean.audit_chain?.evidence.chain_verified, true, 'the audit sealing is wired in');
  t.not(clean.audit_chain?.status, 'fail');
  t.same(clean.pkce_required?.references, { rfc9700: '§2.1.1', nist_800_63b: null, asvs_5_0: '10.4.6' });
  t.same((await services.alerts.list({ limit: 10 })).items, [], 'nothing failed, nothing raised');

  // Crafted trouble: a client exempt from PKCE with a wildcard redirect (written with SQL: registration refuses one)
  // and an old secret; an admin without a factor.
  await services.clients.createClient(
    { client_id: 'legacy', redirect_uris: ['https://legacy.example.com/cb'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_basic', require_pkce: false } as never,
    { type: 'cli' },
  );
  await db.execute(sql`update clients set metadata = jsonb_set(metadata, '{redirect_uris}', '["https://*.example.com/cb"]'), created_at = now() - interval '400 days' where client_id = 'legacy'`);
  const admin = await seedAuthUser(server, 'admin-nofactor@example.com');
  await assignRoles(server, admin.id, ['admin']);

  const report = await services.compliance.report();
  const checks = byId(report.checks);
  t.equal(checks.pkce_required?.status, 'fail');
  t.same(checks.pkce_required?.evidence.exempt_clients, ['legacy']);
  t.equal(checks.redirect_uris?.status, 'fail');
  t.same(checks.redirect_uris?.evidence.problems, [{ client_id: 'legacy', uri: 'https://*.example.com/cb', problem: 'wildcard' }]);
  t.equal(checks.client_secret_age?.status, 'warn');
  t.equal(checks.admins_without_factor?.status, 'fail');
  t.same(checks.admins_without_factor?.evidence.users, [{ id: admin.id, email: admin.email, roles: ['admin'] }]);
  t.equal(checks.admin_roles_require_mfa?.status, 'fail', 'a role without MFA held by a user');
  t.same(checks.admin_roles_require_mfa?.evidence.roles_without_mfa, [{ role: 'admin', holders: 1 }]);
  t.same(checks.superusers?.evidence.count, 1);
  t.ok(report.summary.fail >= 3);

  const raised = await services.alerts.list({ limit: 50 });
  const failedChecks = raised.items.filter((a) => a.type === 'compliance_failed').map((a) => a.details.check).sort();
  t.same(failedChecks, report.checks.filter((c) => c.status === 'fail').map((c) => c.id).sort(), 'one compliance_failed per failing check');
  await services.compliance.report();
  t.equal((await services.alerts.list({ limit: 50 })).items.length, raised.items.length, 'not again the same day');
  clock.advance(86_400);
  await services.compliance.report();
  t.equal((await services.alerts.list({ limit: 50 })).items.length, raised.items.length * 2, 'again the next day');

  clock.advance(91 * 86_400);
  const later = byId((await services.compliance.report()).checks);
  t.equal(later.inactive_admins?.status, 'warn', 'an admin with no sign-in for 90 days');
  t.equal(later.cleanup_recent?.status, 'warn', 'cleanup did not run within two intervals');
  t.equal(later.signing_key_age?.status, 'warn', 'signing keys past 90 days');

  await services.audit.record({ type: 'audit.seal_broken', outcome: 'failure', actor: { type: 'cli' }, details: { problem: 'row_changed', message: 'row 12 changed', seal: 3, source: 'verify' } });
  const broken = byId((await services.compliance.report()).checks).audit_chain;
  t.equal(broken?.status, 'fail', 'a reported break fails the chain check');
  t.equal(broken?.evidence.problem, 'row 12 changed');
  await services.audit.record({ type: 'audit.verified', outcome: 'success', actor: { type: 'cli' }, details: {} });
  t.equal(byId((await services.compliance.report()).checks).audit_chain?.evidence.chain_verified, true, 'a later successful verification clears it');

  const auditor = await userWithToken(server, 'auditor@example.com', ['admin']);
  const viaApi = await auditor.api('GET', '/api/auth/compliance/');
  t.equal(viaApi.status, 200);
  t.ok(Array.isArray(viaApi.body.checks) && viaApi.body.checks.length >= 18);
  const nobody = await userWithToken(server, 'nobody@example.com');
  t.equal((await nobody.api('GET', '/api/auth/compliance/')).status, 403);
  t.equal((await api(server, 'GET', '/api/auth/compliance/')).status, 401);
});

t.test('audit chain: through the seal status seam', async (t) => {
  const server = await startServer({ env: { ALERT_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const now = new Date();
  const make = (status: { latestSealAt: Date | undefined; chainVerified: boolean; problem?: string }) =>
    createComplianceService({
      db: server.db.database.db,
      clock: () => now,
      settings: { production: false, issuer: 'https://id.example.com', secureCookies: true, mfaRequiredForAll: true, passwordMinLength: 12, lockAfter: 20, rateLimitAuth: 100, refreshTokenAbsoluteTtl: 1, secretMaxAge: 1e9, signingKeyMaxAge: 1e9, cleanupInterval: 300, alertChannels: { webhooks: 1, emails: 0 } },
      developmentSecret: async () => false,
      sealStatus: async () => ({ ...status, intervalSeconds: 60 }),
      alerts: server.app.keryu.services.alerts,
    });
  const chain = async (status: Parameters<typeof make>[0]) => byId((await make(status).report()).checks).audit_chain;
  t.equal((await chain({ latestSealAt: new Date(now.getTime() - 30_000), chainVerified: true }))?.status, 'pass');
  t.equal((await chain({ latestSealAt: new Date(now.getTime() - 300_000), chainVerified: true }))?.status, 'warn', 'sealing behind');
  const broken = await chain({ latestSealAt: now, chainVerified: false, problem: 'row 7 changed' });
  t.equal(broken?.status, 'fail');
  t.equal(broken?.evidence.problem, 'row 7 changed');
});

t.test('keryu compliance: a table, --json, exit status', { skip: !onPostgres && 'the CLI test opens its own database (PostgreSQL)' }, async (t) => {
  const server = await startServer({ env: { ALERT_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const dir = await mkdtemp(join(tmpdir(), 'keryu-compliance-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = async (argv: string[], env: Record<string, string> = {}) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, {
      env: { KERYU_SECRET: TEST_SECRET, DATA_DIR: dir, DATABASE_URL: server.db.url!, MIGRATE_ON_START: 'false', ...env },
      stdin: Readable.from(['']),
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    });
    return { code, stdout, stderr };
  };
  const table = await run(['compliance']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^STATUS\s+CHECK\s+REFERENCES\s+EVIDENCE/);
  t.match(table.stdout, /PASS\s+pkce_required\s+RFC 9700 §2\.1\.1; ASVS 10\.4\.6/);
  const json = await run(['compliance', '--json']);
  const parsed = JSON.parse(json.stdout) as { checks: CheckResult[] };
  t.equal(byId(parsed.checks).pkce_required?.status, 'pass');

  const admin = await seedAuthUser(server, 'cli-admin@example.com');
  await assignRoles(server, admin.id, ['admin']);
  const failing = await run(['compliance']);
  t.equal(failing.code, 1, 'a failing check: exit status 1');
  t.match(failing.stdout, /FAIL\s+admins_without_factor/);

  const badConfig = await run(['compliance'], { ALERT_WEBHOOK_URL: 'not a url', ALERT_WEBHOOK_SECRET: 'nope' });
  t.equal(badConfig.code, 1);
  t.match(badConfig.stderr, /ALERT_WEBHOOK_URL/);
});
