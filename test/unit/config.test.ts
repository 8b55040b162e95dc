import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ConfigError, describeConfig, parseConfig } from '../../src/config/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('defaults', async (t) => {
  const c = parseConfig({});
  t.equal(c.port, 3000);
  t.equal(c.host, '0.0.0.0');
  t.equal(c.issuer, 'http://localhost:3000/oidc');
  t.equal(c.issuerPath, '/oidc');
  t.equal(c.databaseUrl, undefined, 'no DATABASE_URL means embedded PGlite');
  t.equal(c.dataDir, './data');
  t.equal(c.logLevel, 'info');
  t.equal(c.migrateOnStart, true);
  t.equal(c.trustProxy, false);
  t.equal(c.secureCookies, false);
  t.ok(c.ttl.authorizationCode <= 60, 'codes live at most 60 s');
  t.equal(c.shutdownDelay, 5, 'SIGTERM drains for 5 s');
  t.equal(c.metricsPort, 9464, 'metrics on their own port');
  t.equal(parseConfig({ METRICS_PORT: '0' }).metricsPort, 0, '0 turns metrics off');
});

t.test('issuer follows PORT and its path decides the mount point', async (t) => {
  t.equal(parseConfig({ PORT: '8080' }).issuer, 'http://localhost:8080/oidc');
  const c = parseConfig({ ISSUER: 'https://id.example.com/auth/oidc/' });
  t.equal(c.issuer, 'https://id.example.com/auth/oidc', 'trailing slash removed');
  t.equal(c.issuerPath, '/auth/oidc');
  t.equal(c.secureCookies, true, 'https issuer → secure (__Host-) cookies');
  t.equal(parseConfig({ ISSUER: 'https://id.example.com' }).issuerPath, '', 'root issuer');
});

t.test('invalid values name the variable and what is expected', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ ISSUER: 'not a url' }, /ISSUER/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a postgres/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ KERYU_SECRET: 'short' }, /KERYU_SECRET: must be at least 32/],
    [{ AUTHORIZATION_CODE_TTL: '600' }, /AUTHORIZATION_CODE_TTL/],
    [{ MIGRATE_ON_START: 'maybe' }, /MIGRATE_ON_START/],
    [{ SHUTDOWN_DELAY: 'soon' }, /SHUTDOWN_DELAY/],
    [{ SHUTDOWN_DELAY: '-1' }, /SHUTDOWN_DELAY/],
    [{ SHUTDOWN_DELAY: '1.5' }, /SHUTDOWN_DELAY/],
    [{ METRICS_PORT: 'nine' }, /METRICS_PORT/],
    [{ METRICS_PORT: '70000' }, /METRICS_PORT/],
    [{ PORT: '9000', METRICS_PORT: '9000' }, /METRICS_PORT: must differ from PORT/],
  ];
  for (const [env, pattern] of cases) {
    t.throws(() => parseConfig(env), ConfigError);
    try {
      parseConfig(env);
    } catch (err) {
      t.match((err as Error).message, pattern, JSON.stringify(env));
    }
  }
  try {
    parseConfig({ KERYU_SECRET: 'short-and-secret-value' });
  } catch (err) {
    t.notMatch((err as Error).message, /short-and-secret-value/, 'a secret value is never echoed');
  }
});

t.test('several problems are reported together', async (t) => {
  try {
    parseConfig({ PORT: 'x', LOG_LEVEL: 'y' });
    t.fail('should throw');
  } catch (err) {
    t.equal((err as ConfigError).problems.length, 2);
  }
});

t.test('production refuses to start without KERYU_SECRET', async (t) => {
  t.throws(() => parseConfig({ NODE_ENV: 'production' }), /KERYU_SECRET: required when NODE_ENV=production/);
  t.doesNotThrow(() => parseConfig({ NODE_ENV: 'production', KERYU_SECRET: 'x'.repeat(40) }));
});

t.test('empty values fall back to defaults; TRUST_PROXY forms', async (t) => {
  t.equal(parseConfig({ PORT: '' }).port, 3000);
  t.equal(parseConfig({ TRUST_PROXY: 'true' }).trustProxy, true);
  t.equal(parseConfig({ TRUST_PROXY: '2' }).trustProxy, 2);
  t.same(parseConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy, ['10.0.0.0/8', '127.0.0.1']);
});

t.test('every variable is described with its default', async (t) => {
  const rows = describeConfig();
  for (const row of rows) t.ok(row.description.length > 5, `${row.name} has a description`);
  t.equal(rows.find((r) => r.name === 'PORT')?.default, '3000');
});

t.test('the server exits with one line naming the variable, no stack trace', async (t) => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: 'abc', LOG_LEVEL: 'nope' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.equal(result.status, 1);
  t.match(result.stderr, /PORT/);
  t.match(result.stderr, /LOG_LEVEL/);
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace');
});

t.test('an invalid SHUTDOWN_DELAY or METRICS_PORT stops start-up, naming the variable', async (t) => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, SHUTDOWN_DELAY: 'later', METRICS_PORT: '99999' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.equal(result.status, 1);
  t.match(result.stderr, /SHUTDOWN_DELAY: .*\(got "later"\)/);
  t.match(result.stderr, /METRICS_PORT: .*\(got "99999"\)/);
});

t.test('MFA settings: secure defaults, Twilio all or nothing, secrets never echoed', async (t) => {
  const c = parseConfig({});
  t.same(c.mfa, { required: false, issuerName: 'keryu-auth', deviceVerification: 'challenge', deviceTrustTtl: 30 * 86400, ipVerification: 'notify', ipVerificationPeriod: 90 * 86400, resendInterval: 30, sendsPerHour: 10 });
  t.equal(c.sms, undefined, 'no Twilio: SMS go to the log');
  const sid = `AC${'ab'.repeat(16)}`;
  const full = parseConfig({ TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: 'tok', TWILIO_FROM: '+14155550000', TWILIO_API_URL: 'http://127.0.0.1:9' });
  t.same(full.sms, { accountSid: sid, authToken: 'tok', from: '+14155550000', apiUrl: 'http://127.0.0.1:9' });
  t.throws(() => parseConfig({ TWILIO_ACCOUNT_SID: sid }), /TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM: set all three or none/);
  try {
    parseConfig({ TWILIO_ACCOUNT_SID: 'not-a-sid-but-a-secret', TWILIO_AUTH_TOKEN: 'x', TWILIO_FROM: 'y' });
    t.fail('a malformed SID is refused');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.notMatch((err as Error).message, /not-a-sid-but-a-secret/, 'the value is not echoed');
  }
  t.throws(() => parseConfig({ DEVICE_VERIFICATION: 'maybe' }), /DEVICE_VERIFICATION/);
  t.throws(() => parseConfig({ IP_VERIFICATION: 'always' }), /IP_VERIFICATION/);
  t.equal(parseConfig({ MFA_REQUIRED: 'true' }).mfa.required, true);
});

t.test('alert channels: URLs, a whsec_ secret, https in production, named when wrong, secrets never echoed', async (t) => {
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
  const ok = parseConfig({ ALERT_WEBHOOK_URL: 'https://a.example/hook, https://b.example/hook', ALERT_WEBHOOK_SECRET: secret, ALERT_EMAIL: 'soc@example.com,oncall@example.com' });
  t.same(ok.alerts.webhookUrls, ['https://a.example/hook', 'https://b.example/hook']);
  t.same(ok.alerts.emails, ['soc@example.com', 'oncall@example.com']);
  t.same(parseConfig({}).alerts, { ...parseConfig({}).alerts, webhookUrls: [], emails: [], interval: 10, retryMaxAgeSeconds: 86400 }, 'no channel by default');

  const problem = (env: Record<string, string>) => {
    try {
      parseConfig(env);
    } catch (err) {
      return err instanceof ConfigError ? err.problems.join('\n') : String(err);
    }
    return '';
  };
  t.match(problem({ ALERT_WEBHOOK_URL: 'not a url', ALERT_WEBHOOK_SECRET: secret }), /^ALERT_WEBHOOK_URL\b/);
  t.match(problem({ ALERT_WEBHOOK_URL: 'https://ok.example/hook,ftp://x.example/', ALERT_WEBHOOK_SECRET: secret }), /^ALERT_WEBHOOK_URL/);
  const badSecret = problem({ ALERT_WEBHOOK_URL: 'https://a.example/hook', ALERT_WEBHOOK_SECRET: 'hunter2-not-a-whsec-secret' });
  t.match(badSecret, /^ALERT_WEBHOOK_SECRET: must be a Standard Webhooks secret/);
  t.notMatch(badSecret, /hunter2/, 'the secret is not echoed');
  t.match(problem({ ALERT_WEBHOOK_URL: 'https://a.example/hook' }), /^ALERT_WEBHOOK_SECRET: required when ALERT_WEBHOOK_URL is set/);
  t.match(problem({ NODE_ENV: 'production', KERYU_SECRET: 'x'.repeat(40), ALERT_WEBHOOK_URL: 'http://a.example/hook', ALERT_WEBHOOK_SECRET: secret }), /^ALERT_WEBHOOK_URL: must use https/);
  t.match(problem({ ALERT_EMAIL: 'soc@example.com, nobody' }), /^ALERT_EMAIL\b/);
});

t.test('the server refuses to start on a bad alert configuration, naming the field', async (t) => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, ALERT_WEBHOOK_URL: 'https://a.example/hook', ALERT_WEBHOOK_SECRET: 'not-whsec' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.not(result.status, 0);
  t.match(result.stderr, /ALERT_WEBHOOK_SECRET/);
  t.notMatch(result.stderr, /not-whsec/);
});

t.test('message secrets in the log: off by default, an explicit setting, refused in production', async (t) => {
  const problem = (env: Record<string, string>) => {
    try {
      parseConfig(env);
      return '';
    } catch (err) {
      return err instanceof ConfigError ? err.problems.join('\n') : String(err);
    }
  };
  t.equal(parseConfig({}).logMessageSecrets, false, 'redacted unless asked');
  t.equal(parseConfig({ LOG_MESSAGE_SECRETS: 'true' }).logMessageSecrets, true, 'development may ask');
  t.equal(parseConfig({ NODE_ENV: 'production', KERYU_SECRET: 'x'.repeat(40) }).logMessageSecrets, false);
  t.match(problem({ NODE_ENV: 'production', KERYU_SECRET: 'x'.repeat(40), LOG_MESSAGE_SECRETS: 'true' }), /^LOG_MESSAGE_SECRETS: must be false when NODE_ENV=production/);
});
