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

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof BootstrapError) {
    process.stderr.write(`keryu-auth: ${err.message}\n`);
  } else {
    process.stderr.write(`keryu-auth: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
});
