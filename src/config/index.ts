/**
 * The service's configuration: one schema, read once from the environment, validated, frozen.
 * This module is the only reader of process.env (callers pass `process.env` in, tests pass objects).
 */
import { z } from 'zod';

const durationSeconds = (description: string, fallback: number) =>
  z.coerce.number().int().nonnegative().default(fallback).describe(description);

const booleanString = (description: string, fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes')
    .describe(description);

/**
 * `TRUST_PROXY` follows Fastify's `trustProxy`: `true`/`false`, a hop count, or a comma-separated list of
 * addresses/CIDRs. Only the proxies named here may set X-Forwarded-* headers.
 */
const trustProxy = z
  .string()
  .default('false')
  .transform((v): boolean | number | string[] => {
    if (v === 'true') return true;
    if (v === 'false' || v === '') return false;
    if (/^\d+$/.test(v)) return Number(v);
    return v.split(',').map((s) => s.trim()).filter(Boolean);
  })
  .describe('Proxies trusted to set X-Forwarded-* (true, false, hop count, or comma-separated IPs/CIDRs)');

/** A comma-separated list; blanks around items and empty items are dropped. */
const commaList = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

/**
 * Passkeys' relying party: its id and the origins assertions may come from, checked once here. A browser
 * accepts an RP id only when it equals the page's host or is a registrable suffix of it (WebAuthn §5.1.3,
 * HTML "is a registrable domain suffix of or is equal to"), so a mismatch would fail every ceremony at run
 * time; it is refused at start-up instead. Without a public-suffix list, a bare top-level name is refused
 * (`com`); `localhost` is allowed, and plain http only for it and loopback addresses (secure contexts). An
 * issuer at an IP address gives an IP RP id, which apps can use but browsers refuse: browser passkeys need a
 * host name.
 */
/** Hosts browsers treat as secure over plain http (W3C Secure Contexts §3.2: potentially trustworthy origins). */
const loopbackHost = (host: string) => host === 'localhost' || host.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';

function webauthnOf(rpIdSetting: string | undefined, rpName: string, originsSetting: string[] | undefined, issuerUrl: URL) {
  const rpId = rpIdSetting ?? issuerUrl.hostname;
  const origins = (originsSetting ?? [issuerUrl.origin]).map((o) => new URL(o).origin);
  const problems: string[] = [];
  if (!rpId.includes('.') && !loopbackHost(rpId)) problems.push(`WEBAUTHN_RP_ID: "${rpId}" is not a registrable domain (a name such as example.com, or localhost)`);
  for (const origin of origins) {
    const url = new URL(origin);
    if (url.protocol !== 'https:' && !loopbackHost(url.hostname)) problems.push(`WEBAUTHN_ORIGINS: ${origin} must use https (plain http only for localhost or a loopback address)`);
    if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`)) problems.push(`WEBAUTHN_RP_ID: "${rpId}" must be the host of ${origin} or a registrable suffix of it`);
  }
  if (problems.length) throw new ConfigError(problems);
  return { rpId, rpName, origins };
}

export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development').describe('Runtime mode; production refuses unsafe defaults'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000).describe('TCP port to listen on'),
    HOST: z.string().min(1).default('0.0.0.0').describe('Interface to bind'),
    ISSUER: z.url({ protocol: /^https?$/ }).optional().describe('Public issuer URL; the provider is mounted at its path (default http://localhost:$PORT/oidc)'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional()
      .describe('PostgreSQL connection URL; unset = embedded PGlite under DATA_DIR'),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10).describe('Connections per replica (PostgreSQL only)'),
    DATABASE_CONNECT_TIMEOUT: z.coerce.number().int().min(1).max(60).default(2).describe('Seconds to wait for a PostgreSQL connection before the request is refused with 503 (PostgreSQL only)'),
    DATABASE_STATEMENT_TIMEOUT: durationSeconds('Seconds a single SQL statement may run before PostgreSQL cancels it (0 = no limit; PostgreSQL only)', 30),
    DATA_DIR: z.string().min(1).default('./data').describe('Directory for the embedded database and the generated development secret'),
    REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional().describe('Redis URL (optional): rate-limit counters shared by every replica; unset = per-process memory'),
    LOG_MESSAGE_SECRETS: booleanString('Without SMTP_URL or TWILIO_*, mail and SMS are written to the log: show their links and codes there (development only; refused when NODE_ENV=production)', false),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level'),
    KERYU_SECRET: z
      .string()
      .min(32, 'must be at least 32 characters of random data')
      .optional()
      .describe('Root secret: cookie signing, encryption of signing keys at rest, client secret digests. Required in production'),
    KERYU_BOOTSTRAP: z.string().min(1).optional().describe('Path to a bootstrap file (YAML or JSON) applied idempotently at start-up'),
    MIGRATE_ON_START: booleanString('Run database migrations at start-up (under an advisory lock)', true),
    TRUST_PROXY: trustProxy,
    ACCESS_TOKEN_TTL: durationSeconds('Access token lifetime in seconds', 600),
    ID_TOKEN_TTL: durationSeconds('ID token lifetime in seconds', 3600),
    AUTHORIZATION_CODE_TTL: z.coerce.number().int().min(1).max(60).default(60).describe('Authorization code lifetime in seconds (at most 60)'),
    CLIENT_CREDENTIALS_TTL: durationSeconds('Client credentials token lifetime in seconds', 600),
    DEVICE_CODE_TTL: durationSeconds('Device code lifetime in seconds', 600),
    INTERACTION_TTL: durationSeconds('Login/consent interaction lifetime in seconds', 900),
    SESSION_IDLE_TTL: durationSeconds('Browser SSO session idle timeout in seconds', 8 * 3600),
    SESSION_ABSOLUTE_TTL: durationSeconds('Browser SSO session absolute lifetime in seconds', 7 * 86400),
    REFRESH_TOKEN_IDLE_TTL: durationSeconds('Refresh token idle lifetime in seconds (each rotation slides it)', 14 * 86400),
    REFRESH_TOKEN_ABSOLUTE_TTL: durationSeconds('Refresh token family absolute lifetime in seconds', 90 * 86400),
    KEY_ROTATION_DELAY: durationSeconds('Seconds a rotated-in signing key is published in JWKS before it signs', 3600),
    CLEANUP_INTERVAL: durationSeconds('Seconds between runs of the expired-row cleanup on each replica (one replica works at a time); 0 turns it off', 300),
    REFRESH_RETRY_WINDOW: durationSeconds('Seconds a rotated first-party refresh token presented again by the same device from the same network (IPv4 /24, IPv6 /64) gets back the same new pair (retry-safe refresh); 0 turns it off', 30),
    PERSONAL_TOKEN_TTL: durationSeconds('Default lifetime of a personal API token in seconds', 90 * 86400),
    PERSONAL_TOKEN_MAX_TTL: durationSeconds('Longest lifetime a personal API token may have, counted from its creation', 365 * 86400),
    RECENT_SIGN_IN_MAX_AGE: durationSeconds('Seconds since the session\'s sign-in within which it may make sensitive changes without re-authenticating: create a personal API token, add a factor, regenerate recovery codes', 300),
    SESSION_IP_BINDING: z.enum(['off', 'strict']).default('off').describe('off: a refresh from a new IP is recorded; strict: it is refused (ip_mismatch), and a sign-in finishes only from the address it started from'),
    PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).max(64).default(10).describe('Minimum password length (NIST SP 800-63B: at least 8)'),
    PASSWORD_MIN_SCORE: z.coerce.number().int().min(0).max(4).default(3).describe('Minimum zxcvbn strength score (0-4) of a new password'),
    PASSWORD_RESET_TTL: durationSeconds('Lifetime of a password reset link in seconds', 1800),
    LOGIN_DELAY_AFTER: z.coerce.number().int().min(1).default(5).describe('Consecutive failed logins per identifier (or known device) after which each attempt must wait an increasing delay'),
    LOGIN_LOCK_AFTER: z.coerce.number().int().min(1).default(20).describe('Consecutive failed logins after which the identifier is locked'),
    LOGIN_LOCK_DURATION: durationSeconds('First lock duration in seconds; each further lock doubles it', 900),
    LOGIN_LOCK_MAX: durationSeconds('Longest lock duration in seconds', 86400),
    LOGIN_FAILURE_RESET: durationSeconds('Seconds without a failure after which an identifier\'s failure count starts again from zero', 86400),
    LOGIN_IP_MAX_FAILURES: z.coerce.number().int().min(1).default(100).describe('Failed logins per client IP within LOGIN_IP_WINDOW before that IP gets 429'),
    LOGIN_IP_WINDOW: durationSeconds('Window in seconds for LOGIN_IP_MAX_FAILURES', 900),
    RATE_LIMIT_WINDOW: z.coerce.number().int().min(1).default(60).describe('Rate-limit window in seconds'),
    RATE_LIMIT_AUTH: z.coerce.number().int().nonnegative().default(120).describe('Requests per client address (IPv4 address, IPv6 /64) per window to /api/auth/ endpoints; 0 turns it off'),
    RATE_LIMIT_OIDC: z.coerce.number().int().nonnegative().default(600).describe('Requests per client address (IPv4 address, IPv6 /64) per window to the OIDC token endpoint and the login interaction; 0 turns it off'),
    RATE_LIMIT_CLIENT: z.coerce.number().int().nonnegative().default(1200).describe('Requests per OAuth client per window to the OIDC token endpoint; 0 turns it off'),
    SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional().describe('SMTP server for outgoing mail; unset = mail is written to the log (links redacted in production)'),
    MAIL_FROM: z.string().min(3).default('keryu-auth <no-reply@localhost>').describe('Sender address of outgoing mail'),
    MFA_REQUIRED: booleanString('Require a second factor of every user (users without one enrol at their next sign-in)', false),
    MFA_ISSUER_NAME: z.string().min(1).max(64).default('keryu-auth').describe('Name authenticator apps show next to TOTP codes'),
    DEVICE_VERIFICATION: z.enum(['off', 'challenge']).default('challenge').describe('off, or challenge: a sign-in from a device the user has not verified needs a code by email or SMS'),
    DEVICE_TRUST_TTL: durationSeconds('How long a verified device is trusted ("remember this device")', 30 * 86400),
    IP_VERIFICATION: z.enum(['off', 'notify', 'challenge']).default('notify').describe('Sign-in from a network (IPv4 /24, IPv6 /64) not seen within IP_VERIFICATION_PERIOD: off, notify (email), or challenge (a code)'),
    IP_VERIFICATION_PERIOD: durationSeconds('How long a network a user signed in from stays known', 90 * 86400),
    OTP_RESEND_INTERVAL: durationSeconds('Seconds between two sends of a code to one user or destination', 30),
    OTP_SENDS_PER_HOUR: z.coerce.number().int().min(1).default(10).describe('Codes sent per hour at most, per user and per destination (phone or address)'),
    TWILIO_ACCOUNT_SID: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio account SID (AC + 32 hex)').optional().describe('Twilio account for SMS codes; unset = SMS messages are written to the log'),
    TWILIO_AUTH_TOKEN: z.string().min(1).optional().describe('Twilio auth token'),
    TWILIO_FROM: z.string().min(1).optional().describe('Sender of SMS codes: an E.164 number or a messaging service SID (MG...)'),
    TWILIO_API_URL: z.url({ protocol: /^https?$/ }).optional().describe('Another base URL for the Twilio API (a regional edge, or a test endpoint)'),
    KEY_REFRESH_INTERVAL: z.coerce.number().int().min(1).max(5).default(2).describe('Seconds between checks for rotated signing keys (replicas converge within this)'),
    PASSWORD_RESET_RESEND_INTERVAL: durationSeconds('Seconds between two password reset emails to one account (requests in between answer 202 and send nothing)', 60),
    PASSWORD_RESET_SENDS_PER_HOUR: z.coerce.number().int().min(1).default(5).describe('Password reset emails per hour at most, per account (further requests answer 202 and send nothing)'),
    AUDIT_SEAL_INTERVAL: durationSeconds('Seconds between runs of the audit sealing job (one replica seals at a time); 0 turns it off', 60),
    ALERT_WEBHOOK_URL: commaList.pipe(z.array(z.url({ protocol: /^https?$/, error: 'must be a comma-separated list of http(s) URLs' }))).optional().describe('Webhook receivers of security alerts, comma-separated (https in production); requests are signed per Standard Webhooks with ALERT_WEBHOOK_SECRET'),
    ALERT_WEBHOOK_SECRET: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/, 'must be a Standard Webhooks secret: whsec_ followed by 24 to 64 random bytes in base64')
      .optional()
      .describe('Signing secret of alert webhooks (whsec_ + base64 of 24-64 random bytes); required with ALERT_WEBHOOK_URL'),
    ALERT_EMAIL: commaList.pipe(z.array(z.email({ error: 'must be a comma-separated list of email addresses' }))).optional().describe('Addresses that receive security alerts by email (comma-separated)'),
    ALERT_INTERVAL: durationSeconds('Seconds between alert evaluation and delivery runs on each replica (one replica works at a time); 0 turns alerting off', 10),
    ALERT_RETRY_BASE: z.coerce.number().int().min(1).default(30).describe('Seconds before the first retry of a failed alert delivery; each retry doubles it (at most one hour apart)'),
    ALERT_RETRY_MAX_AGE: durationSeconds('Seconds an alert delivery is retried before it is given up (and audited as failed)', 86400),
    ALERT_STUFFING_FAILURES: z.coerce.number().int().min(2).default(20).describe('credential_stuffing alert: failed logins from one IP network (IPv4 /24, IPv6 /64) within ALERT_STUFFING_WINDOW'),
    ALERT_STUFFING_ACCOUNTS: z.coerce.number().int().min(2).default(5).describe('credential_stuffing alert: distinct identifiers those failures must span'),
    ALERT_STUFFING_WINDOW: z.coerce.number().int().min(60).default(600).describe('credential_stuffing alert: window in seconds'),
    SIGNING_KEY_MAX_AGE: durationSeconds('Age in seconds after which the signing key in use is overdue for rotation (signing_key_overdue alert, compliance check)', 90 * 86400),
    COMPLIANCE_SECRET_MAX_AGE: durationSeconds('Age in seconds after which a client secret is reported by the compliance check (warn)', 365 * 86400),
    SHUTDOWN_DELAY: z.coerce.number().int().min(0).max(300).default(5).describe('Seconds between SIGTERM (readiness turns 503 at once) and closing the listener, so load balancers stop sending first'),
    WEBAUTHN_RP_ID: z.string().regex(/^[a-z0-9.-]+$/, 'must be a domain name in lower case, without scheme or port').optional().describe('Passkeys: the WebAuthn relying party id, a registrable suffix of every origin\'s host (default: the issuer\'s host)'),
    WEBAUTHN_RP_NAME: z.string().min(1).max(64).optional().describe('Passkeys: the name authenticators show for this service (default: MFA_ISSUER_NAME)'),
    WEBAUTHN_ORIGINS: commaList.pipe(z.array(z.url({ protocol: /^https?$/, error: 'must be a comma-separated list of http(s) origins' }))).optional().describe('Passkeys: the origins pages asking for a passkey are served from, comma-separated (default: the issuer\'s origin)'),
    METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464).describe('Port of the Prometheus /metrics listener (bound to HOST, never on PORT); 0 turns metrics off'),
  })
  .refine((raw) => raw.METRICS_PORT === 0 || raw.METRICS_PORT !== raw.PORT, {
    path: ['METRICS_PORT'],
    message: 'must differ from PORT (metrics are never served on the public port)',
  })
  .transform((raw) => {
    const issuer = raw.ISSUER ?? `http://localhost:${raw.PORT}/oidc`;
    const issuerUrl = new URL(issuer);
    return {
      nodeEnv: raw.NODE_ENV,
      port: raw.PORT,
      host: raw.HOST,
      issuer: issuer.replace(/\/$/, ''),
      /** The path the provider is mounted at, without a trailing slash ('' when mounted at the root). */
      issuerPath: issuerUrl.pathname.replace(/\/$/, ''),
      secureCookies: issuerUrl.protocol === 'https:',
      /** The audience JWT access tokens must name to be accepted by this service's own APIs. */
      apiAudience: new URL('/api', issuerUrl).href,
      databaseUrl: raw.DATABASE_URL,
      databasePoolSize: raw.DATABASE_POOL_SIZE,
      databaseConnectTimeout: raw.DATABASE_CONNECT_TIMEOUT,
      databaseStatementTimeout: raw.DATABASE_STATEMENT_TIMEOUT,
      dataDir: raw.DATA_DIR,
      redisUrl: raw.REDIS_URL,
      logLevel: raw.LOG_LEVEL,
      secret: raw.KERYU_SECRET,
      bootstrapFile: raw.KERYU_BOOTSTRAP,
      migrateOnStart: raw.MIGRATE_ON_START,
      trustProxy: raw.TRUST_PROXY,
      ttl: {
        accessToken: raw.ACCESS_TOKEN_TTL,
        idToken: raw.ID_TOKEN_TTL,
        authorizationCode: raw.AUTHORIZATION_CODE_TTL,
        clientCredentials: raw.CLIENT_CREDENTIALS_TTL,
        deviceCode: raw.DEVICE_CODE_TTL,
        interaction: raw.INTERACTION_TTL,
        sessionIdle: raw.SESSION_IDLE_TTL,
        sessionAbsolute: raw.SESSION_ABSOLUTE_TTL,
        refreshTokenIdle: raw.REFRESH_TOKEN_IDLE_TTL,
        refreshTokenAbsolute: raw.REFRESH_TOKEN_ABSOLUTE_TTL,
      },
      cleanupInterval: raw.CLEANUP_INTERVAL,
      logMessageSecrets: raw.LOG_MESSAGE_SECRETS,
      auth: {
        refreshRetryWindow: raw.REFRESH_RETRY_WINDOW,
        personalTokenTtl: raw.PERSONAL_TOKEN_TTL,
        personalTokenMaxTtl: raw.PERSONAL_TOKEN_MAX_TTL,
        recentSignInMaxAge: raw.RECENT_SIGN_IN_MAX_AGE,
        ipBinding: raw.SESSION_IP_BINDING,
        passwordResetTtl: raw.PASSWORD_RESET_TTL,
        passwordResetSends: { resendInterval: raw.PASSWORD_RESET_RESEND_INTERVAL, sendsPerHour: raw.PASSWORD_RESET_SENDS_PER_HOUR },
      },
      passwordPolicy: { minLength: raw.PASSWORD_MIN_LENGTH, minScore: raw.PASSWORD_MIN_SCORE },
      bruteForce: {
        delayAfter: raw.LOGIN_DELAY_AFTER,
        lockAfter: raw.LOGIN_LOCK_AFTER,
        lockSeconds: raw.LOGIN_LOCK_DURATION,
        maxLockSeconds: raw.LOGIN_LOCK_MAX,
        resetAfterSeconds: raw.LOGIN_FAILURE_RESET,
        ipMaxFailures: raw.LOGIN_IP_MAX_FAILURES,
        ipWindowSeconds: raw.LOGIN_IP_WINDOW,
      },
      rateLimit: { windowSeconds: raw.RATE_LIMIT_WINDOW, auth: raw.RATE_LIMIT_AUTH, oidc: raw.RATE_LIMIT_OIDC, client: raw.RATE_LIMIT_CLIENT },
      mail: { smtpUrl: raw.SMTP_URL, from: raw.MAIL_FROM },
      sms: raw.TWILIO_ACCOUNT_SID && raw.TWILIO_AUTH_TOKEN && raw.TWILIO_FROM
        ? { accountSid: raw.TWILIO_ACCOUNT_SID, authToken: raw.TWILIO_AUTH_TOKEN, from: raw.TWILIO_FROM, apiUrl: raw.TWILIO_API_URL }
        : undefined,
      mfa: {
        required: raw.MFA_REQUIRED,
        issuerName: raw.MFA_ISSUER_NAME,
        deviceVerification: raw.DEVICE_VERIFICATION,
        deviceTrustTtl: raw.DEVICE_TRUST_TTL,
        ipVerification: raw.IP_VERIFICATION,
        ipVerificationPeriod: raw.IP_VERIFICATION_PERIOD,
        resendInterval: raw.OTP_RESEND_INTERVAL,
        sendsPerHour: raw.OTP_SENDS_PER_HOUR,
      },
      keys: {
        rotationDelay: raw.KEY_ROTATION_DELAY,
        refreshInterval: raw.KEY_REFRESH_INTERVAL,
      },
      auditSealInterval: raw.AUDIT_SEAL_INTERVAL,
      alerts: {
        webhookUrls: raw.ALERT_WEBHOOK_URL ?? [],
        webhookSecret: raw.ALERT_WEBHOOK_SECRET,
        emails: raw.ALERT_EMAIL ?? [],
        interval: raw.ALERT_INTERVAL,
        retryBaseSeconds: raw.ALERT_RETRY_BASE,
        retryMaxAgeSeconds: raw.ALERT_RETRY_MAX_AGE,
        stuffing: { failures: raw.ALERT_STUFFING_FAILURES, accounts: raw.ALERT_STUFFING_ACCOUNTS, windowSeconds: raw.ALERT_STUFFING_WINDOW },
        signingKeyMaxAge: raw.SIGNING_KEY_MAX_AGE,
      },
      compliance: { secretMaxAge: raw.COMPLIANCE_SECRET_MAX_AGE, signingKeyMaxAge: raw.SIGNING_KEY_MAX_AGE },
      shutdownDelay: raw.SHUTDOWN_DELAY,
      webauthn: webauthnOf(raw.WEBAUTHN_RP_ID, raw.WEBAUTHN_RP_NAME ?? raw.MFA_ISSUER_NAME, raw.WEBAUTHN_ORIGINS, issuerUrl),
      /** 0 = metrics off: nothing is collected and no listener is opened. */
      metricsPort: raw.METRICS_PORT,
    };
  });

export type EnvInput = Record<string, string | undefined>;
/** Configuration as read from the environment; `secret` may still be missing (see resolveSecret). */
export type RawConfig = z.infer<typeof configSchema>;
/** Configuration with the root secret resolved: what the rest of the service receives. */
export type Config = Readonly<Omit<RawConfig, 'secret'> & { secret: string }>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parse the environment. Empty strings count as unset, so `FOO=` in an env file falls back to the default. */
export function parseConfig(env: EnvInput): RawConfig {
  const known = Object.keys(configSchema.in.shape);
  const input: Record<string, string> = {};
  for (const key of known) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = configSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const name = issue.path.join('.') || 'environment';
        const got = typeof issue.path[0] === 'string' ? input[issue.path[0]] : undefined;
        return `${name}: ${issue.message}${got !== undefined && !/SECRET|URL|TOKEN|SID/.test(name) ? ` (got "${got}")` : ''}`;
      }),
    );
  }
  const config = result.data;
  if (config.nodeEnv === 'production' && !config.secret) {
    throw new ConfigError(['KERYU_SECRET: required when NODE_ENV=production (at least 32 characters of random data)']);
  }
  if (config.nodeEnv === 'production' && config.logMessageSecrets) {
    throw new ConfigError(['LOG_MESSAGE_SECRETS: must be false when NODE_ENV=production (codes and reset links in a log are credentials)']);
  }
  const twilio = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM'].filter((k) => input[k] !== undefined);
  if (twilio.length > 0 && twilio.length < 3) {
    throw new ConfigError([`TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM: set all three or none (got only ${twilio.join(', ')})`]);
  }
  if (config.alerts.webhookUrls.length > 0 && !config.alerts.webhookSecret) {
    throw new ConfigError(['ALERT_WEBHOOK_SECRET: required when ALERT_WEBHOOK_URL is set (alerts are always signed)']);
  }
  if (config.nodeEnv === 'production' && config.alerts.webhookUrls.some((u) => !u.startsWith('https:'))) {
    throw new ConfigError(['ALERT_WEBHOOK_URL: must use https when NODE_ENV=production']);
  }
  return config;
}

/** Every variable with its description and default, for the README table and `keryu config`. */
export function describeConfig(): Array<{ name: string; description: string; default: string | undefined }> {
  return Object.entries(configSchema.in.shape).map(([name, schema]) => {
    let fallback: string | undefined;
    const def = (schema as z.ZodType).def as { type: string; defaultValue?: unknown; innerType?: z.ZodType; in?: z.ZodType };
    let node: { type: string; defaultValue?: unknown; innerType?: z.ZodType; in?: z.ZodType } | undefined = def;
    while (node) {
      if (node.type === 'default') {
        fallback = String(node.defaultValue);
        break;
      }
      node = (node.innerType ?? node.in)?.def as typeof node | undefined;
    }
    return { name, description: (schema as z.ZodType).description ?? '', default: fallback };
  });
}
