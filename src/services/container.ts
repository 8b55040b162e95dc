/**
 * Builds the framework-free services from configuration and a database. The HTTP app and the CLI both
 * use this, so they share one wiring and one set of rules.
 */
import type { Config } from '../config/index.js';
import type { Database } from '../db/client.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { createTokenDigest, deriveKey } from '../lib/crypto.js';
import { createClientQueries } from '../queries/clients.js';
import { createUserQueries } from '../queries/users.js';
import { createActivityService } from './activity.js';
import { createAccessTokenIssuer, type AccessTokenIssuer, type AccessTokenKeys } from './access-tokens.js';
import { usesDevelopmentSecret } from '../config/secret.js';
import { createAlertService } from './alerts/service.js';
import { auditSealStatusOf, createComplianceService } from './compliance/service.js';
import { createAuditService, type AuditLogger } from './audit.js';
import { createAuditLogService } from './audit-log.js';
import { createAuditSealService } from './audit-seal/service.js';
import { createAuthMethodRegistry } from './auth-methods.js';
import { createBootstrapService } from './bootstrap.js';
import { createBruteForceProtector } from './brute-force.js';
import { createClientMetadataCache } from './client-cache.js';
import { createClientService, type ClientRegistration } from './clients.js';
import { createLoginService } from './login/index.js';
import { createOtpCodeService } from './mfa/codes.js';
import { createTrustedDeviceService } from './mfa/devices.js';
import { createFactorService } from './mfa/factors.js';
import { registerBuiltInMethods } from './mfa/methods.js';
import { createSecurityNotices } from './mfa/notices.js';
import { createMfaPolicy } from './mfa/policy.js';
import { createMailer } from './notify/mailer.js';
import { createSmsSender } from './notify/sms.js';
import { createPasswordHasher } from './password.js';
import { createDecisionCache } from './rbac/cache.js';
import { createRbacService } from './rbac/service.js';
import { createUserAdminService } from './user-admin.js';
import { createPasswordManagementService } from './password-management.js';
import { createPasswordPolicy } from './password-policy.js';
import { createSessionService } from './sessions.js';
import { createSigningKeyService } from './signing-keys.js';
import { createUserService } from './users.js';
import { createRecentSignIn } from './recent-sign-in.js';
import { registerPasskeyMethod } from './passkeys/method.js';
import { createPasskeyService } from './passkeys/service.js';

export interface ServiceLogger extends AuditLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export function createServices(deps: {
  config: Config;
  database: Database;
  log: ServiceLogger;
  clock?: Clock;
  /** The provider's keys, for first-party access tokens (the HTTP app passes them; the CLI issues none). */
  signingKeys?: AccessTokenKeys;
  /**
   * The provider's part of client registration (secret digest key, metadata validation), from
   * src/oidc/client-registration.ts: the composition root supplies it, so nothing here touches oidc-provider.
   */
  clientRegistration: ClientRegistration;
}) {
  const { config, database } = deps;
  const clock = deps.clock ?? systemClock;
  const db = database.db;
  const audit = createAuditService({ db, log: deps.log });
  const passwords = createPasswordHasher();
  const policy = createPasswordPolicy(config.passwordPolicy);
  const userQueries = createUserQueries(db);
  const clientQueries = createClientQueries(db);
  const clientCache = createClientMetadataCache(clientQueries);
  const keys = createSigningKeyService({
    db,
    audit,
    encryptionKey: deriveKey(config.secret, 'signing-key-encryption'),
    maxSignedTtlSeconds: Math.max(config.ttl.idToken, config.ttl.accessToken, config.ttl.clientCredentials),
    rotationDelaySeconds: config.keys.rotationDelay,
  });
  const auditSeals = createAuditSealService({ db, audit, log: deps.log, encryptionKey: deriveKey(config.secret, 'audit-signing-key-encryption'), now: clock });
  const cache = createDecisionCache({ db, clock });
  const rbac = createRbacService({ db, audit, cache, clock });
  // One "MFA is required" rule for the login's plan and the provider's interaction policy.
  const mfaPolicy = createMfaPolicy({ db, requiredForAll: config.mfa.required, roleRequiresMfa: async (userId) => (await rbac.effectiveOf({ kind: 'user', id: userId })).mfaRequired });
  const providerDeps = {
    config,
    db,
    users: userQueries,
    clients: clientCache.queries,
    authorization: { effectiveOf: rbac.effectiveOf },
    sessionSatisfiesMfa: mfaPolicy.sessionSatisfies,
  };

  const clientDeps = deps.clientRegistration;

  const mailer = createMailer({ smtpUrl: config.mail.smtpUrl, from: config.mail.from, showSecrets: config.logMessageSecrets, warnWithoutTransport: config.nodeEnv === 'production', log: deps.log });
  let issuer: AccessTokenIssuer | undefined;
  const accessTokens = () => {
    if (!deps.signingKeys) throw new Error('access tokens need the provider keys (not available here)');
    issuer ??= createAccessTokenIssuer({ keys: deps.signingKeys, issuer: config.issuer, audience: config.apiAudience });
    return issuer;
  };
  // Refresh, personal, challenge, reset and report tokens are stored as this keyed digest.
  const tokenDigest = createTokenDigest(deriveKey(config.secret, 'token-digest'));
  const users = createUserService({ db, passwords, audit, policy, dummyCostKey: deriveKey(config.secret, 'dummy-password-cost') });
  const recentSignIn = createRecentSignIn({ db, clock, maxAge: config.auth.recentSignInMaxAge });
  const sessions = createSessionService({
    db,
    clock,
    audit,
    mailer,
    recentSignIn,
    accessTokens,
    retryKey: deriveKey(config.secret, 'refresh-retry-encryption'),
    tokenDigest,
    log: deps.log,
    config: {
      accessTokenTtl: config.ttl.accessToken,
      idleTtl: config.ttl.refreshTokenIdle,
      absoluteTtl: config.ttl.refreshTokenAbsolute,
      retryWindow: config.auth.refreshRetryWindow,
      ipBinding: config.auth.ipBinding,
      personalTokenTtl: config.auth.personalTokenTtl,
      personalTokenMaxTtl: config.auth.personalTokenMaxTtl,
      tombstoneTtl: Math.max(config.ttl.refreshTokenAbsolute, config.ttl.accessToken, config.ttl.idToken),
    },
  });
  const bruteForce = createBruteForceProtector({ db, clock, audit, config: config.bruteForce });
  const publicOrigin = new URL(config.issuer).origin;
  const sms = createSmsSender({ twilio: config.sms, showSecrets: config.logMessageSecrets, warnWithoutTransport: config.nodeEnv === 'production', log: deps.log });
  const codes = createOtpCodeService({
    db,
    clock,
    key: deriveKey(config.secret, 'otp-code-digest'),
    mailer,
    sms,
    audit,
    limits: { resendInterval: config.mfa.resendInterval, sendsPerHour: config.mfa.sendsPerHour },
  });
  // The factor service reports changes through the notices (declared below): read only when a factor changes.
  const factors = createFactorService({
    db,
    recentSignIn,
    clock,
    codes,
    audit,
    secretKey: deriveKey(config.secret, 'mfa-secret-encryption'),
    recoveryKey: deriveKey(config.secret, 'recovery-code-digest'),
    issuerName: config.mfa.issuerName,
    verifyPassword: (userId, password) => users.verifyPassword(userId, password),
    bruteForce,
    notifier: () => notices,
  });
  const notices = createSecurityNotices({
    db,
    clock,
    mailer,
    sessions,
    audit,
    issuerName: config.mfa.issuerName,
    reportLink: (token) => `${publicOrigin}/security/report?token=${encodeURIComponent(token)}`,
    sessionTtl: config.ttl.refreshTokenAbsolute,
    log: deps.log,
    tokenDigest,
  });
  const alerts = createAlertService({ db, clock, audit, mailer, config: config.alerts, log: deps.log, latestSeal: () => auditSeals.lastSeal() });
  const methods = createAuthMethodRegistry();
  registerBuiltInMethods(methods, { factors, codes });
  // Passkeys: one more factor type and sign-in method (and the passwordless first factor).
  const passkeys = createPasskeyService({ db, clock, audit, rp: config.webauthn, tokenDigest, userHandleKey: deriveKey(config.secret, 'webauthn-user-handle'), notifier: () => notices });
  registerPasskeyMethod(methods, { passkeys });
  /** Tells every replica (and this one) that effective permissions changed outside an rbac transaction. */
  const notifyRbacChanged = async () => {
    await rbac.notifyChanged();
  };

  return {
    clock,
    audit,
    rbac,
    userAdmin: createUserAdminService({
      db,
      clock,
      audit,
      users,
      unlockIdentifier: (identifier) => bruteForce.unlock(identifier),
      onChange: notifyRbacChanged,
      resetMfa: (user, actor, context) => factors.resetAll(user, actor, context),
    }),
    passwords,
    policy,
    keys,
    providerDeps,
    clientCache,
    mailer,
    users,
    sessions,
    bruteForce,
    methods,
    factors,
    codes,
    notices,
    passkeys,
    mfaDevices: createTrustedDeviceService({ db, clock, audit }),
    login: createLoginService({
      db,
      clock,
      users,
      bruteForce,
      sessions,
      methods,
      factors,
      codes,
      notices,
      audit,
      mfaPolicy,
      passkeys,
      deviceCookieKey: deriveKey(config.secret, 'device-cookie'),
      tokenDigest,
      policy: config.mfa,
      ipBinding: config.auth.ipBinding,
      sessionTtl: { api: config.ttl.refreshTokenAbsolute, form: config.ttl.sessionAbsolute },
    }),
    passwordManagement: createPasswordManagementService({
      db,
      clock,
      users,
      sessions,
      audit,
      mailer,
      resetTtlSeconds: config.auth.passwordResetTtl,
      resetSendLimits: config.auth.passwordResetSends,
      resetLink: (token) => `${publicOrigin}/password/reset?token=${encodeURIComponent(token)}`,
      log: deps.log,
      bruteForce,
      tokenDigest,
      reauthenticate: factors.reauthenticate,
    }),
    clients: createClientService({ db, audit, ...clientDeps }),
    alerts,
    compliance: createComplianceService({
      db,
      clock,
      alerts,
      developmentSecret: () => usesDevelopmentSecret(config),
      // Sealing by CronJob (AUDIT_SEAL_INTERVAL=0): a seal a day at least counts as current.
      sealStatus: auditSealStatusOf({ db, lastSealAt: async () => (await auditSeals.lastSeal())?.sealedAt, intervalSeconds: config.auditSealInterval || 86_400 }),
      settings: {
        production: config.nodeEnv === 'production',
        issuer: config.issuer,
        secureCookies: config.secureCookies,
        mfaRequiredForAll: config.mfa.required,
        passwordMinLength: config.passwordPolicy.minLength,
        lockAfter: config.bruteForce.lockAfter,
        rateLimitAuth: config.rateLimit.auth,
        refreshTokenAbsoluteTtl: config.ttl.refreshTokenAbsolute,
        secretMaxAge: config.compliance.secretMaxAge,
        signingKeyMaxAge: config.compliance.signingKeyMaxAge,
        cleanupInterval: config.cleanupInterval,
        alertChannels: { webhooks: config.alerts.webhookUrls.length, emails: config.alerts.emails.length },
      },
    }),
    bootstrap: createBootstrapService({ db, audit, passwords, policy, clientDeps, rbac: { cache, clock } }),
    auditSeals,
    activity: createActivityService({ db }),
    auditLog: createAuditLogService({ db, audit, seals: auditSeals, now: clock }),
  };
}
export type Services = ReturnType<typeof createServices>;
