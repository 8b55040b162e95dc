/**
 * The `keryu` command: database migrations, bootstrap, users, clients and signing keys, with the same
 * services and rules as the server. `--json` prints machine-readable output; errors print one line and
 * exit non-zero.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import { ConfigError, parseConfig, type EnvInput } from './config/index.js';
import { resolveSecret } from './config/secret.js';
import { databaseTarget, openDatabase, type Database } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { AppError } from './errors/index.js';
import { runCleanup } from './jobs/cleanup.js';
import { createClientRegistration } from './oidc/client-registration.js';
import { buildProvider } from './oidc/provider.js';
import { BootstrapError, readBootstrapFile } from './services/bootstrap.js';
import { GRANT_TYPES, type ClientInput } from './services/clients.js';
import { formatComplianceReport } from './services/compliance/format.js';
import { createServices, type Services } from './services/container.js';
import { normalizeEmail } from './services/users.js';
import { runAuditCommand } from './cli-audit.js';

export interface CliIo {
  env: EnvInput;
  stdin: NodeJS.ReadableStream;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const USAGE = `usage: keryu <command> [options] [--json]

commands:
  migrate                               apply database migrations
  bootstrap FILE                        apply a bootstrap file (YAML or JSON), idempotently
  user create --email E [--name N] [--phone P] --password-stdin
                                        create a user; the password is read from standard input
  user unlock --email E                 clear failed-login counts and locks of an identifier
  user mfa-reset --email E              remove every second factor and trusted device of a user (a lost phone)
  client create --client-id ID [--name N] [--redirect-uri URI]... [--post-logout-redirect-uri URI]...
                [--grant-type G]... [--scope S] [--public] [--auth-method M] [--secret-stdin] [--no-pkce]
                [--first-party]
                                        register a client; a generated secret is printed once
  keys rotate [--activate-in SECONDS]   add new signing keys (published now, signing after the delay)
  keys list                             list published signing keys
  cleanup                               remove expired tokens, sessions, tombstones and retired keys
  audit export [--from T] [--to T] [--type TYPE]... [--outcome O] [--actor-id ID] [--subject-id ID]
               [--client-id ID] [--ip IP] [--format ndjson|csv]
                                        write matching audit events to standard output (RFC 3339 times)
  audit seal                            seal the audit rows written since the last seal (for a CronJob
                                        if AUDIT_SEAL_INTERVAL=0)
  audit verify [--from SEAL] [--expect-digest DIGEST]
                                        recompute every seal and row; exit 1 naming the first problem
  audit verify --export FILE --jwks FILE [--expect-digest DIGEST]
                                        verify an NDJSON export offline with the public keys
  audit keys                            print the public keys (JWKS) that verify seals
  compliance                            check configuration and data against RFC 9700, NIST SP 800-63B, ASVS 5.0
                                        (exit status 1 when a check fails)

configuration comes from the environment (see README): DATABASE_URL, DATA_DIR, KERYU_SECRET, ...`;

class UsageError extends Error {}

async function readStdin(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  // Only the trailing newline a shell or `echo` adds is removed: a password may end in spaces.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function describeError(err: unknown): string {
  if (err instanceof ZodError) {
    const issue = err.issues[0];
    return issue ? `${issue.path.join('.') || 'input'}: ${issue.message}` : 'invalid input';
  }
  if (err instanceof ConfigError || err instanceof BootstrapError || err instanceof AppError || err instanceof UsageError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  const args = argv.filter((a) => a !== '--json');
  const out = (human: string, data: unknown) => io.stdout.write(json ? `${JSON.stringify(data)}\n` : `${human}\n`);
  const [command, sub] = args;

  if (!command || command === 'help' || command === '--help' || command === '-h') {
    io.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }

  let database: Database | undefined;
  let services: Services | undefined;
  try {
    const raw = parseConfig(io.env);
    const config = await resolveSecret(raw, { warn: (m) => io.stderr.write(`warning: ${m}\n`) });
    const open = async (): Promise<Services> => {
      database = await openDatabase(databaseTarget(config));
      if (config.migrateOnStart || command === 'migrate') await runMigrations(database);
      const built: Services = createServices({
        config,
        database,
        // The CLI has no running provider: one is built with the server's configuration when a client is validated.
        clientRegistration: createClientRegistration(config, async () => buildProvider(built.providerDeps, await built.keys.loadKeySet())),
        log: {
          error: (obj, msg) => io.stderr.write(`${msg}: ${describeError((obj as { err?: unknown }).err)}\n`),
          warn: (_obj, msg) => io.stderr.write(`warning: ${msg}\n`),
          info: () => {},
        },
      });
      services = built;
      await built.keys.ensureSigningKeys();
      await built.rbac.ensureBuiltins();
      return built;
    };

    switch (command) {
      case 'migrate': {
        database = await openDatabase(databaseTarget(config));
        await runMigrations(database);
        out('migrations applied', { status: 'ok' });
        return 0;
      }
      case 'bootstrap': {
        const file = args[1];
        if (!file) throw new UsageError('bootstrap needs a FILE');
        const doc = await readBootstrapFile(file);
        const s = await open();
        const summary = await s.bootstrap.applyBootstrap(doc, { type: 'cli' }, file);
        const counts = (r: Record<string, string>) => Object.values(r).filter((v) => v !== 'unchanged').length;
        out(
          `bootstrap applied: ${counts(summary.clients)} client(s), ${counts(summary.users)} user(s), ${counts(summary.resource_servers)} resource server(s) changed`,
          summary,
        );
        return 0;
      }
      case 'user': {
        if (sub === 'unlock') {
          const { values } = parseArgs({ args: args.slice(2), options: { email: { type: 'string' } }, strict: true });
          if (!values.email) throw new UsageError('user unlock needs --email');
          const s = await open();
          const identifier = normalizeEmail(values.email);
          const cleared = await s.bruteForce.unlock(identifier);
          await s.audit.record({ type: 'user.unlocked', outcome: 'success', actor: { type: 'cli' }, details: { identifier, cleared } });
          out(`unlocked ${identifier} (${cleared} counter(s) cleared)`, { email: identifier, cleared });
          return 0;
        }
        if (sub === 'mfa-reset') {
          const { values } = parseArgs({ args: args.slice(2), options: { email: { type: 'string' } }, strict: true });
          if (!values.email) throw new UsageError('user mfa-reset needs --email');
          const s = await open();
          const user = await s.users.findUserByEmail(values.email);
          if (!user) throw new Error(`no user with email ${normalizeEmail(values.email)}`);
          const removed = await s.factors.resetAll(user, { type: 'cli' });
          out(`removed ${removed} factor(s) of ${user.email}; the next sign-in verifies the device again`, { id: user.id, email: user.email, removed });
          return 0;
        }
        if (sub !== 'create') throw new UsageError(`unknown user command: ${sub ?? '(none)'}`);
        const { values } = parseArgs({
          args: args.slice(2),
          options: {
            email: { type: 'string' },
            name: { type: 'string' },
            phone: { type: 'string' },
            'password-stdin': { type: 'boolean', default: false },
            'email-verified': { type: 'boolean', default: false },
          },
          strict: true,
        });
        if (!values.email) throw new UsageError('user create needs --email');
        const password = values['password-stdin'] ? await readStdin(io.stdin) : undefined;
        const s = await open();
        const user = await s.users.createUser(
          { email: values.email, name: values.name, phone: values.phone, password, emailVerified: values['email-verified'] },
          { type: 'cli' },
        );
        out(`created user ${user.id} <${user.email}>`, { id: user.id, email: user.email, name: user.name, phone: user.phone });
        return 0;
      }
      case 'client': {
        if (sub !== 'create') throw new UsageError(`unknown client command: ${sub ?? '(none)'}`);
        const { values } = parseArgs({
          args: args.slice(2),
          options: {
            'client-id': { type: 'string' },
            name: { type: 'string' },
            'redirect-uri': { type: 'string', multiple: true },
            'post-logout-redirect-uri': { type: 'string', multiple: true },
            'grant-type': { type: 'string', multiple: true },
            scope: { type: 'string' },
            public: { type: 'boolean', default: false },
            'auth-method': { type: 'string' },
            'secret-stdin': { type: 'boolean', default: false },
            'no-pkce': { type: 'boolean', default: false },
            'first-party': { type: 'boolean', default: false },
            'application-type': { type: 'string' },
          },
          strict: true,
        });
        if (!values['client-id']) throw new UsageError('client create needs --client-id');
        const grantTypes = values['grant-type'] ?? ['authorization_code', 'refresh_token'];
        for (const g of grantTypes) {
          if (!(GRANT_TYPES as readonly string[]).includes(g)) throw new UsageError(`--grant-type: unknown grant type ${g} (one of ${GRANT_TYPES.join(', ')})`);
        }
        const input: Record<string, unknown> = {
          client_id: values['client-id'],
          client_name: values.name,
          redirect_uris: values['redirect-uri'] ?? [],
          post_logout_redirect_uris: values['post-logout-redirect-uri'] ?? [],
          grant_types: grantTypes,
          scope: values.scope,
          token_endpoint_auth_method: values.public ? 'none' : (values['auth-method'] ?? 'client_secret_basic'),
          application_type: values['application-type'],
          require_pkce: values['no-pkce'] ? false : undefined,
          first_party: values['first-party'] ? true : undefined,
          client_secret: values['secret-stdin'] ? await readStdin(io.stdin) : undefined,
        };
        const s = await open();
        const client = await s.clients.createClient(
          Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as ClientInput,
          { type: 'cli' },
        );
        const secretLine = typeof client.client_secret === 'string' ? `\nclient_secret: ${client.client_secret}\n(shown once: store it now)` : '';
        out(`created client ${client.client_id}${secretLine}`, client);
        return 0;
      }
      case 'cleanup': {
        await open();
        if (!database) throw new Error('database not open');
        const result = await runCleanup(database.db);
        out(
          result.ran
            ? `removed ${result.payloads} expired provider rows, ${result.tombstones} grant tombstones, ${result.keys} retired keys, ${result.sessions} expired sessions and tokens, ${result.secrets} expired one-time secrets, ${result.loginFailures} stale login counters; forgot ${result.retryAnswers} refresh retry answers`
            : 'another replica is cleaning up; nothing done',
          result,
        );
        return 0;
      }
      case 'audit':
        return await runAuditCommand(sub, args.slice(2), { json, out, io, open, usage: (message) => new UsageError(message) });
      case 'keys': {
        const s = await open();
        if (sub === 'rotate') {
          const { values } = parseArgs({ args: args.slice(2), options: { 'activate-in': { type: 'string' } }, strict: true });
          const delay = values['activate-in'] === undefined ? undefined : Number(values['activate-in']);
          if (delay !== undefined && (!Number.isInteger(delay) || delay < 0)) throw new UsageError('--activate-in must be a whole number of seconds');
          const result = await s.keys.rotateSigningKeys({ activateInSeconds: delay, actor: 'cli' });
          out(`new keys ${result.keys.map((k) => `${k.kid} (${k.alg})`).join(', ')} published; they sign from ${result.activates_at}`, result);
          return 0;
        }
        if (sub === 'list') {
          const keys = await s.keys.listSigningKeys();
          out(keys.map((k) => `${k.kid}  ${k.alg}  ${k.state}  activates ${k.activates_at}${k.retires_at ? `  retires ${k.retires_at}` : ''}`).join('\n'), keys);
          return 0;
        }
        throw new UsageError(`unknown keys command: ${sub ?? '(none)'}`);
      }
      case 'compliance': {
        const s = await open();
        const report = await s.compliance.report();
        out(formatComplianceReport(report), report);
        return report.summary.fail > 0 ? 1 : 0;
      }
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (err) {
    io.stderr.write(`keryu: ${describeError(err)}\n`);
    if (err instanceof UsageError) io.stderr.write('run "keryu help" for usage\n');
    return err instanceof UsageError ? 2 : 1;
  } finally {
    await services?.audit.flush().catch(() => {});
    await database?.close().catch(() => {});
  }
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  runCli(process.argv.slice(2), { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`keryu: ${describeError(err)}\n`);
      process.exit(1);
    },
  );
}
