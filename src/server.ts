/** Process entry: read config, build the app, listen, shut down gracefully. No logic lives here. */
import { ConfigError, parseConfig } from './config/index.js';
import { resolveSecret } from './config/secret.js';
import { buildApp } from './app.js';
import { BootstrapError } from './services/bootstrap.js';

async function main(): Promise<void> {
  const raw = parseConfig(process.env);
  const config = await resolveSecret(raw, { warn: (m) => process.stderr.write(`warning: ${m}\n`) });
  const app = await buildApp(config);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    // Give the load balancer no new work, finish what is in flight, then release the database.
    const deadline = setTimeout(() => {
      app.log.error('shutdown timed out; exiting');
      process.exit(1);
    }, 25_000);
    deadline.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await app.listen({ port: config.port, host: config.host });
  app.log.info({ issuer: config.issuer, database: config.databaseUrl ? 'postgres' : 'pglite' }, 'keryu-auth ready');
}

/**
 * The error and its causes: drizzle wraps driver errors as "Failed query: ...", and only the cause says
 * why (e.g. a missing table), so the operator must see both.
 */
function explainStartupError(err: unknown): string {
  const messages: string[] = [];
  let missingTable = false;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    messages.push(e.message.trim());
    // PostgreSQL undefined_table: the schema was never migrated.
    if ((e as { code?: unknown }).code === '42P01') missingTable = true;
  }
  if (!messages.length) return String(err);
  const text = messages.join('\n  caused by: ');
  return missingTable ? `${text}\n  the database schema is missing: run "keryu migrate" or start with MIGRATE_ON_START=true` : text;
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof BootstrapError) {
    process.stderr.write(`keryu-auth: ${err.message}\n`);
  } else {
    process.stderr.write(`keryu-auth: failed to start: ${explainStartupError(err)}\n`);
  }
  process.exit(1);
});
