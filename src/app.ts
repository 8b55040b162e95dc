/**
 * buildApp(config): the one composition root. Order matters and is commented where it does.
 */
import middie from '@fastify/middie';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from './config/index.js';
import { databaseTarget, openDatabase, type Database } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { scheduleCleanup } from './jobs/cleanup.js';
import { scheduleAlertJobs } from './jobs/alert-runner.js';
import { alertRoutes } from './routes/api/alerts.js';
import { complianceRoutes } from './routes/api/compliance.js';
import { deriveKey } from './lib/crypto.js';
import { registerProviderEvents, registerSessionMirror } from './oidc/events.js';
import { registerErrorCodeCorrections } from './oidc/error-codes.js';
import { registerTokenEndpoints } from './oidc/token-endpoints.js';
import { createRevokedTokenQueries } from './queries/revoked-tokens.js';
import { publicPart } from './services/signing-keys.js';
import { buildProvider } from './oidc/provider.js';
import { createClientRegistration } from './oidc/client-registration.js';
import { createProviderHost, type ProviderHost } from './oidc/provider-host.js';
import { registerUnavailableAnswers } from './oidc/unavailable.js';
import { isOAuthEndpoint, providerRouteOf } from './oidc/routes.js';
import { oidcJwtAccessTokenStrategy } from './oidc/bearer.js';
import { registerApiConventions } from './plugins/api.js';
import { authenticate } from './plugins/authenticate.js';
import { registerErrorHandler } from './plugins/error-handler.js';
import { registerRequestContext } from './plugins/request-context.js';
import { requirePermission } from './plugins/require-permission.js';
import { rbacRoutes } from './routes/api/rbac.js';
import { clientRoutes } from './routes/api/clients.js';
import { userAdminRoutes } from './routes/api/users.js';
import { auditRoutes } from './routes/api/audit.js';
import { scheduleAuditSealing } from './jobs/audit-seal.js';
import { syncClientMetadataCache } from './services/client-cache.js';
import { createRevokedTokenCache, syncRevokedTokenCache } from './services/revoked-token-cache.js';
import { syncDecisionCache } from './services/rbac/cache.js';
import { firstPartySessionStrategy, personalTokenStrategy } from './plugins/first-party-bearer.js';
import { canonicalPath, registerRateLimits } from './plugins/rate-limit.js';
import { loginChannelOf, registerRequestMetrics } from './plugins/metrics.js';
import { createMetrics, type Metrics } from './services/metrics.js';
import { createReadiness, databaseCheck, type Readiness } from './services/readiness.js';
import { SIGNING_ALGORITHMS } from './services/signing-keys.js';
import { authRoutes } from './routes/api/auth.js';
import { accountRoutes } from './routes/account/index.js';
import { adminRoutes } from './routes/admin/index.js';
import { inProcessTransport } from './routes/account/in-process-transport.js';
import { accountClientMetadata, createAccountRelyingParty } from './services/account/relying-party.js';
import { createAccountSessions } from './services/account/session.js';
import { createAccountApplications } from './services/account/applications.js';
import { mfaRoutes } from './routes/api/mfa.js';
import { passkeyRoutes } from './routes/api/passkeys.js';
import { securityReportPages } from './routes/security-report.js';
import { passwordResetPages } from './routes/password-reset.js';
import type { Clock } from './lib/clock.js';
import { loggerOptions } from './plugins/logger.js';
import { healthRoutes } from './routes/health.js';
import { interactionRoutes } from './routes/interaction/index.js';
import { pageScriptRoutes } from './routes/page-scripts.js';
import { readBootstrapFile } from './services/bootstrap.js';
import { createServices, type Services } from './services/container.js';
import { createFormCsrf } from './views/csrf.js';
import { stylesheet } from './views/render.js';

export interface BuildOptions {
  /** An already-open database (tests); otherwise one is opened from the config and closed with the app. */
  database?: Database;
  /** Replaces the logger options (tests silence or capture it). */
  logger?: FastifyServerOptions['logger'];
  /** The time source of the services (tests move it forward instead of sleeping). */
  clock?: Clock;
}

declare module 'fastify' {
  interface FastifyInstance {
    keryu: {
      config: Config;
      services: Services;
      host: ProviderHost;
      database: Database;
      readiness: Readiness;
      /** Absent when METRICS_PORT=0 (metrics off: nothing is collected). */
      metrics: Metrics | undefined;
      /** SIGTERM's first step: readiness fails from now on ("draining") while requests are still served. */
      drain(): void;
    };
  }
}

const packageVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Paths oidc-provider serves; used only when the issuer sits at the root, so other routes stay reachable. */
const PROVIDER_ROOT_PATHS = ['/.well-known', '/auth', '/token', '/jwks', '/me', '/session', '/device', '/request', '/reg', '/backchannel'];

/** The provider's introspection route (below the issuer path), and the older path that reaches it too. */
const PROVIDER_INTROSPECTION_ROUTE = '/token/introspection';
const FIRST_PARTY_INTROSPECTION_PATH = '/api/auth/introspect';

function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config.logLevel),
    // A hop count becomes proxy-addr's trust function: trust the n nearest hops.
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    bodyLimit: 64 * 1024,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
  });
  let draining = false;
  app.addHook('onClose', async () => {
    draining = true;
  });

  const database = options.database ?? (await openDatabase(databaseTarget(config)));
  if (!options.database) app.addHook('onClose', () => database.close());
  if (config.migrateOnStart) await runMigrations(database);

  // The provider host is built after the services (it needs their keys); access tokens reach it lazily.
  const started: { host?: ProviderHost } = {};
  const hostNow = () => {
    if (!started.host) throw new Error('provider not started yet');
    return started.host;
  };
  // Client registration validates with the running provider; the bootstrap file is applied before it starts,
  // so until then a provider is built with the same configuration for that one purpose.
  const services: Services = createServices({
    config,
    database,
    log: app.log,
    clock: options.clock,
    signingKeys: { signingKey: () => hostNow().currentSigningKey('ES256'), publicJwks: () => hostNow().publicJwks() },
    clientRegistration: createClientRegistration(config, async () => started.host?.provider ?? buildProvider(services.providerDeps, await services.keys.loadKeySet())),
  });
  app.addHook('onClose', async () => services.mailer.close());
  await services.keys.ensureSigningKeys();
  await services.rbac.ensureBuiltins();
  // The account pages' built-in client (services/account/relying-party.ts), kept in step with the issuer.
  await services.clients.applyClient(await services.clients.validateDeclaredClient(accountClientMetadata(config.issuer)), { type: 'system' });
  if (config.bootstrapFile) {
    const summary = await services.bootstrap.applyBootstrap(await readBootstrapFile(config.bootstrapFile), { type: 'system' }, config.bootstrapFile);
    app.log.info({ summary }, 'bootstrap file applied');
  }

  // Revocation of JWT access tokens, answered from memory while notifications flow (API bearer, introspection).
  const revokedTokenCache = createRevokedTokenCache(createRevokedTokenQueries(database.db));
  const metrics =
    config.metricsPort > 0
      ? createMetrics({
          version: packageVersion,
          audit: services.audit,
          db: database.db,
          signingKeys: () => services.keys.listSigningKeys(),
          pool: () => ({ max: database.target.kind === 'postgres' ? (database.target.poolSize ?? 10) : 1 }),
          clock: services.clock,
          log: app.log,
        })
      : undefined;
  if (metrics) {
    const stopMetrics = metrics.start();
    app.addHook('onClose', async () => stopMetrics());
  }

  const host = await createProviderHost({
    keys: services.keys,
    refreshIntervalSeconds: config.keys.refreshInterval,
    log: app.log,
    onPolled: () => metrics?.jobSucceeded('key_refresh'),
    build: (keySet) => {
      const provider = buildProvider(services.providerDeps, keySet);
      registerProviderEvents(provider, services.audit, app.log);
      registerSessionMirror(provider, { db: database.db, clock: services.clock, log: app.log });
      registerErrorCodeCorrections(provider);
      registerUnavailableAnswers(provider);
      registerTokenEndpoints(provider, {
        issuer: config.issuer,
        publicJwks: { keys: keySet.jwks.keys.map(publicPart) },
        revokedTokens: revokedTokenCache.queries,
        firstParty: services.sessions,
        audit: (event) => services.audit.record(event).catch((err: unknown) => app.log.error({ err, type: event.type }, 'audit event lost')),
      });
      return provider;
    },
  });
  started.host = host;
  const readiness = createReadiness([
    { name: 'draining', passes: () => !draining },
    databaseCheck(database.db),
    { name: 'keys', passes: () => SIGNING_ALGORITHMS.every((alg) => Boolean(host.currentSigningKey(alg))) },
  ]);
  app.decorate('keryu', {
    config,
    services,
    host,
    database,
    readiness,
    metrics,
    drain: () => {
      draining = true;
    },
  });
  // Closed in reverse order of registration: stop key polling, then flush the audit queue.
  app.addHook('onClose', async () => {
    await services.audit.flush();
  });
  app.addHook('onClose', async () => host.close());
  const stopRbacSync = await syncDecisionCache(services.rbac.cache, database, app.log);
  app.addHook('onClose', async () => stopRbacSync());
  const stopClientSync = await syncClientMetadataCache(services.clientCache, database, app.log);
  app.addHook('onClose', async () => stopClientSync());
  const stopRevocationSync = await syncRevokedTokenCache(revokedTokenCache, database, app.log);
  app.addHook('onClose', async () => stopRevocationSync());
  if (config.cleanupInterval > 0) {
    const stopCleanup = scheduleCleanup(database.db, config.cleanupInterval, app.log, (result) => {
      if (result.ran) metrics?.jobSucceeded('cleanup');
    });
    app.addHook('onClose', async () => stopCleanup());
  }
  if (config.auditSealInterval > 0) {
    const stopSealing = scheduleAuditSealing(services.auditSeals, config.auditSealInterval, app.log);
    app.addHook('onClose', () => stopSealing());
  }

  if (config.alerts.interval > 0) {
    const stopAlerts = scheduleAlertJobs({ alerts: services.alerts, compliance: () => services.compliance.report(), log: app.log }, config.alerts.interval);
    app.addHook('onClose', async () => stopAlerts());
  }

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  registerErrorHandler(app, {
    // The provider's endpoints match no route (middleware); a limit refused before them is answered as OAuth JSON.
    oauthEndpoint: (request) => {
      const path = canonicalPath(request.url);
      return path === FIRST_PARTY_INTROSPECTION_PATH || isOAuthEndpoint(config.issuerPath, path);
    },
  });
  registerRequestContext(app);
  // First onRequest hook: the timing covers everything after it (rate limits, the provider, our routes).
  if (metrics) registerRequestMetrics(app, metrics, { providerRouteOf: (url) => providerRouteOf(config.issuerPath, url) });

  // Rate limits run in onRequest before the provider middleware, so they also cover the provider's endpoints.
  await registerRateLimits(app, {
    ...config.rateLimit,
    redisUrl: config.redisUrl,
    issuerPath: config.issuerPath,
    onLimited: (limit, request) => metrics?.rateLimited(limit, loginChannelOf(request)),
    onExceeded: (exceeded, request) =>
      void services.audit
        .record({ type: 'rate_limit.exceeded', outcome: 'failure', actor: { type: 'anonymous' }, context: request.requestContext, details: exceeded })
        .catch(() => {}),
    onStoreFallback: (active) => metrics?.rateLimitStoreFallback(active),
  });

  // Behind trusted proxies the provider (Koa with `proxy` on) reads X-Forwarded-*, which Koa trusts from anyone:
  // it gets only what Fastify's trusted-proxy logic derived (TRUST_PROXY), one value per header.
  if (config.trustProxy !== false) {
    app.addHook('onRequest', async (request) => {
      const headers = request.raw.headers;
      headers['x-forwarded-for'] = request.ip;
      headers['x-forwarded-host'] = request.host;
      headers['x-forwarded-proto'] = request.protocol;
    });
  }

  // The provider is a Node handler mounted before Fastify parses bodies (middie runs in onRequest), so
  // its own parsers see the raw request; the path prefix keeps it from swallowing our other routes.
  await app.register(middie);
  const handle = (req: IncomingMessage, res: ServerResponse) => host.handle(req, res);
  // The first-party API's introspection path is an alias of the provider's endpoint (the one discovery names):
  // one implementation, one client authentication (RFC 6749 §2.3.1), every token kind.
  app.use(FIRST_PARTY_INTROSPECTION_PATH, (req: IncomingMessage, res: ServerResponse) => {
    req.url = PROVIDER_INTROSPECTION_ROUTE;
    handle(req, res);
  });
  if (config.issuerPath) {
    app.use(config.issuerPath, handle);
  } else {
    app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (PROVIDER_ROOT_PATHS.some((p) => path === p || path.startsWith(`${p}/`))) handle(req, res);
      else next();
    });
  }

  await registerApiConventions(app, { version: packageVersion });
  await app.register(authenticate, {
    // Provider JWTs first: the hot path of relying services, answered from memory once verified. The OIDC JWT
    // strategy leaves first-party session tokens alone without verifying them (their session is checked).
    strategies: [
      oidcJwtAccessTokenStrategy(host, { issuer: config.issuer, audience: config.apiAudience, isRevoked: (token) => revokedTokenCache.isRevoked(token) }),
      firstPartySessionStrategy(services.sessions),
      personalTokenStrategy(services.sessions),
    ],
  });

  // Before the API routes: its onRoute hook guards every route that declares a permission.
  await app.register(requirePermission, { cache: services.rbac.cache, audit: services.audit });
  await app.register(rbacRoutes, { rbac: services.rbac });
  await app.register(clientRoutes, { clientAdmin: services.clientAdmin });
  await app.register(userAdminRoutes, { userAdmin: services.userAdmin });
  await app.register(auditRoutes, { auditLog: services.auditLog, seals: services.auditSeals });

  await app.register(healthRoutes, { readiness });
  app.get('/assets/keryu.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(stylesheet),
  );
  // The pages' one script (passkeys), at a content-named path.
  await app.register(pageScriptRoutes);
  // One CSRF key for every form; each form binds its token to its own purpose and subject.
  const formCsrf = createFormCsrf(deriveKey(config.secret, 'csrf'));
  await app.register(interactionRoutes, {
    host,
    login: services.login,
    factors: services.factors,
    passkeys: services.passkeys,
    audit: services.audit,
    csrf: formCsrf,
    secureCookies: config.secureCookies,
  });
  const accountSessions = createAccountSessions({ key: deriveKey(config.secret, 'account-session'), db: database.db, clock: services.clock, recentSignInMaxAge: config.auth.recentSignInMaxAge });
  await app.register(accountRoutes, {
    relyingParty: createAccountRelyingParty({ issuer: config.issuer, transport: inProcessTransport(app) }),
    sessions: accountSessions,
    csrf: formCsrf,
    secureCookies: config.secureCookies,
    users: services.users,
    factors: services.factors,
    devices: services.mfaDevices,
    security: { factors: services.factors, passkeys: services.passkeys, passwords: services.passwordManagement, passwordMinLength: config.passwordPolicy.minLength, sealKey: deriveKey(config.secret, 'account-form-values'), clock: services.clock },
    tokens: { sessions: services.sessions, personalTokenTtl: config.auth.personalTokenTtl, personalTokenMaxTtl: config.auth.personalTokenMaxTtl },
    applications: createAccountApplications({ db: database.db, clock: services.clock, sessions: services.sessions }),
    signIns: services.sessions,
    activity: services.activity, notices: services.notices, clock: services.clock,
  });
  // The admin console (routes/admin/): signed in with the account pages' session; its own permission guard.
  await app.register(adminRoutes, {
    sessions: accountSessions, csrf: formCsrf, secureCookies: config.secureCookies, cache: services.rbac.cache, audit: services.audit,
    users: { userAdmin: services.userAdmin, rbac: services.rbac, factors: services.factors, signIns: services.sessions, activity: services.activity },
    auditLog: services.auditLog,
    rbac: services.rbac,
    clients: { clients: services.clientAdmin, usage: services.clientUsage, rbac: services.rbac, secretGracePeriod: config.clients.secretGracePeriod },
  });
  await app.register(authRoutes, { login: services.login, sessions: services.sessions, passwordManagement: services.passwordManagement, activity: services.activity, secureCookies: config.secureCookies });
  await app.register(mfaRoutes, { factors: services.factors, login: services.login, users: services.users, mfaDevices: services.mfaDevices });
  await app.register(passkeyRoutes, { passkeys: services.passkeys, factors: services.factors, login: services.login, users: services.users, secureCookies: config.secureCookies });
  await app.register(securityReportPages, { notices: services.notices, csrf: formCsrf });
  await app.register(alertRoutes, { alerts: services.alerts });
  await app.register(complianceRoutes, { compliance: services.compliance });
  await app.register(passwordResetPages, {
    passwords: services.passwordManagement,
    csrf: formCsrf,
    minLength: config.passwordPolicy.minLength,
    resetTtlSeconds: config.auth.passwordResetTtl,
  });

  // Last: every /api/ route is known now, so unsupported methods can answer 405.
  app.registerMethodNotAllowed();
  return app;
}
