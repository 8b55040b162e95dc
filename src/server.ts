/**
 * Process entry: read config, wait for the schema when migrations are someone else's job, build the app,
 * listen, and shut down gracefully. No request logic lives here.
 *
 * Start-up with MIGRATE_ON_START=false and a schema that is not current (the migrations Job has not run
 * yet): the process does not exit (that would crash-loop the pod); it serves `/healthz` (200) and
 * `/readyz` (503, failing `migrations`, or `database` while that is unreachable) from a small start-up
 * server, checks again every SCHEMA_POLL_MS, and once the schema is current builds the app and takes over
 * the port.
 *
 * Shutdown on SIGTERM: `/readyz` fails at once (`draining`) while everything is still served for
 * SHUTDOWN_DELAY seconds, so load balancers and Kubernetes endpoints stop sending; then the listener stops
 * accepting, in-flight requests finish, the audit queue is flushed, PostgreSQL and Redis are closed, and the
 * process exits 0. SIGINT (Ctrl-C at a terminal) skips the delay; a second signal ends the delay early.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, parseConfig, type Config } from './config/index.js';
import { resolveSecret } from './config/secret.js';
import { buildApp } from './app.js';
import { databaseTarget, openDatabase } from './db/client.js';
import { countPendingMigrations } from './db/migrate.js';
import { loggerOptions } from './plugins/logger.js';
import { listenForMetrics, type MetricsListener } from './plugins/metrics.js';
import { healthRoutes } from './routes/health.js';
import { BootstrapError } from './services/bootstrap.js';
import { explainStartupError } from './errors/startup.js';
import type { ReadinessCheckName } from './services/readiness.js';

/** How often a replica waiting for its schema checks again (a migrations Job takes seconds). */
const SCHEMA_POLL_MS = 2000;
/** After the delay, closing (in-flight requests, audit flush, connections) must end within this, or the process exits 1. */
const CLOSE_TIMEOUT_MS = 20_000;
/** How soon a connection that fell idle during the close is closed. */
const IDLE_SWEEP_MS = 100;

interface Lifecycle {
  /** The first stop signal received, if any. */
  signal?: NodeJS.Signals;
  /** Resolves when a (further) signal arrives: ends the wait for the schema, or the shutdown delay. */
  nextSignal: Promise<void>;
}

function watchSignals(onFirst: (signal: NodeJS.Signals) => void): Lifecycle {
  let wake: () => void = () => {};
  const lifecycle: Lifecycle = { nextSignal: new Promise<void>((resolve) => (wake = resolve)) };
  const handle = (signal: NodeJS.Signals) => {
    const first = !lifecycle.signal;
    lifecycle.signal ??= signal;
    const woken = wake;
    lifecycle.nextSignal = new Promise<void>((resolve) => (wake = resolve));
    woken();
    if (first) onFirst(signal);
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
  return lifecycle;
}

/**
 * Serves the probes until the database holds every migration of this release. Returns the start-up server
 * (still listening, so probes keep answering while the app is built), or undefined when the schema was
 * current at once or a stop signal arrived.
 */
async function waitForSchema(config: Config, lifecycle: Lifecycle): Promise<FastifyInstance | undefined> {
  const database = await openDatabase(databaseTarget(config));
  let starting: FastifyInstance | undefined;
  try {
    let failing: ReadinessCheckName[] = [];
    const check = async () => {
      try {
        failing = (await countPendingMigrations(database)) > 0 ? ['migrations'] : [];
      } catch {
        failing = ['database'];
      }
    };
    await check();
    if (!failing.length) return undefined;
    starting = Fastify({ logger: loggerOptions(config.logLevel) });
    // Never ready: once the schema is current, the app is still loading its keys until it takes the port over.
    await starting.register(healthRoutes, { readiness: { evaluate: async () => ({ ready: false, failing: failing.length ? failing : ['keys'] }) } });
    await starting.listen({ port: config.port, host: config.host });
    starting.log.warn(
      { failing },
      failing.includes('database')
        ? 'cannot reach the database (DATABASE_URL) to check its schema; waiting for it, not ready until then'
        : 'the database schema is not current and MIGRATE_ON_START=false: run "keryu migrate" (or set MIGRATE_ON_START=true); waiting, not ready until then',
    );
    while (failing.length && !lifecycle.signal) {
      await Promise.race([sleep(SCHEMA_POLL_MS), lifecycle.nextSignal]);
      if (!lifecycle.signal) await check();
    }
    if (lifecycle.signal) {
      await starting.close();
      return undefined;
    }
    starting.log.info('database schema is current; starting');
    return starting;
  } catch (err) {
    await starting?.close();
    throw err;
  } finally {
    await database.close();
  }
}

/** What the start-up error explanation may name (filled once the configuration is read). */
const startupSettings: { databaseUrl?: string | undefined } = {};

async function main(): Promise<void> {
  const raw = parseConfig(process.env);
  startupSettings.databaseUrl = raw.databaseUrl;
  const config = await resolveSecret(raw, { warn: (m) => process.stderr.write(`warning: ${m}\n`) });

  // The shutdown exists once the app listens; a signal before that is handled when it does.
  const running: { stop?: (signal: NodeJS.Signals) => void } = {};
  const lifecycle = watchSignals((signal) => running.stop?.(signal));

  const starting = config.migrateOnStart ? undefined : await waitForSchema(config, lifecycle);
  if (lifecycle.signal) {
    await starting?.close();
    return process.exit(0);
  }
  const app = await buildApp(config);
  // The start-up server hands the port over only now, so probes went unanswered for as short a time as possible.
  await starting?.close();

  let metricsListener: MetricsListener | undefined;
  const stop = (signal: NodeJS.Signals) => {
    void (async () => {
      app.keryu.drain();
      const delay = signal === 'SIGTERM' ? config.shutdownDelay : 0;
      app.log.info({ signal, delaySeconds: delay }, 'shutting down: not ready; still serving during the delay');
      if (delay > 0) await Promise.race([sleep(delay * 1000), lifecycle.nextSignal]);
      const deadline = setTimeout(() => {
        app.log.error('shutdown timed out; exiting');
        process.exit(1);
      }, CLOSE_TIMEOUT_MS);
      deadline.unref();
      try {
        // Stops accepting, finishes in-flight requests, then the onClose hooks: audit flush, key polling,
        // Redis, PostgreSQL. A keep-alive connection whose last request ends after the listener closed would
        // otherwise stay open until its keep-alive timeout and hold the close up; the sweep ends it once idle.
        const sweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS);
        await app.close().finally(() => clearInterval(sweep));
        await metricsListener?.close();
        process.exit(0);
      } catch (err) {
        app.log.error({ err }, 'error during shutdown');
        process.exit(1);
      }
    })();
  };

  await app.listen({ port: config.port, host: config.host });
  if (app.keryu.metrics) metricsListener = await listenForMetrics(app.keryu.metrics, { port: config.metricsPort, host: config.host });
  app.log.info({ issuer: config.issuer, database: config.databaseUrl ? 'postgres' : 'pglite', metricsPort: metricsListener?.port }, 'keryu-auth ready');
  running.stop = stop;
  // A signal that arrived while the app was being built or started listening.
  if (lifecycle.signal) stop(lifecycle.signal);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof BootstrapError) {
    process.stderr.write(`keryu-auth: ${err.message}\n`);
  } else {
    process.stderr.write(`keryu-auth: failed to start: ${explainStartupError(err, { databaseUrl: startupSettings.databaseUrl })}\n`);
  }
  process.exit(1);
});
