/**
 * The bootstrap file (YAML or JSON): clients, users and resource servers declared once, applied at
 * start-up (KERYU_BOOTSTRAP) and by `keryu bootstrap FILE`. Idempotent: applying it twice changes nothing;
 * it never deletes what it does not declare; a user's password is set only when the user is created.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { createClientQueries } from '../queries/clients.js';
import { createUserQueries } from '../queries/users.js';
import type { AuditEvent, AuditService } from './audit.js';
import { clientInputSchema, createClientService, type ClientServiceDeps, type ValidatedClient } from './clients.js';
import type { PasswordHasher } from './password.js';
import { applyRbacBootstrap, BootstrapReferenceError, grantEntrySchema, permissionEntrySchema, roleEntrySchema, type RbacBootstrapDeps, type RbacBootstrapSummary } from './rbac/bootstrap.js';
import { nameSchema } from './rbac/names.js';
import { AppError } from '../errors/index.js';
import type { PasswordPolicy } from './password-policy.js';
import { emailSchema, passwordSchema, phoneSchema } from './users.js';

const userEntrySchema = z
  .object({
    email: emailSchema,
    password: passwordSchema.optional(),
    password_hash: z.string().regex(/^\$argon2id\$/, 'must be an argon2id hash').optional(),
    name: z.string().min(1).max(200).optional(),
    phone: phoneSchema.optional(),
    email_verified: z.boolean().optional(),
    disabled: z.boolean().optional(),
    /** Roles the user holds (added, never removed by the file). */
    roles: z.array(nameSchema).max(100).optional(),
  })
  .strict()
  .refine((u) => !(u.password && u.password_hash), { message: 'give password or password_hash, not both', path: ['password'] });

const resourceServerEntrySchema = z
  .object({
    identifier: z.url({ message: 'must be an absolute URI' }),
    name: z.string().max(200).optional(),
    scope: z.string().max(2000).default(''),
    access_token_format: z.enum(['jwt', 'opaque']).default('jwt'),
    access_token_ttl: z.number().int().positive().max(86400).optional(),
    /** Access tokens for this resource carry `roles` and `permissions` claims. */
    authorization_claims: z.boolean().default(false),
  })
  .strict();

export const bootstrapSchema = z
  .object({
    // A service account's roles sit next to its RFC 7591 metadata.
    clients: z.array(z.lazy(() => clientInputSchema.safeExtend({ roles: z.array(nameSchema).max(100).optional() }))).default([]),
    users: z.array(userEntrySchema).default([]),
    resource_servers: z.array(resourceServerEntrySchema).default([]),
    permissions: z.array(permissionEntrySchema).default([]),
    roles: z.array(roleEntrySchema).default([]),
    grants: z.array(grantEntrySchema).default([]),
  })
  .strict();
export type BootstrapDocument = z.output<typeof bootstrapSchema>;

export class BootstrapError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid bootstrap file ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'BootstrapError';
  }
}

/** Names an issue by its entry: `clients[0] (web-app).client_secret: ...`. */
function describeIssue(doc: unknown, issue: z.core.$ZodIssue): string {
  const path = issue.path;
  let where = '';
  let node: unknown = doc;
  for (const [i, segment] of path.entries()) {
    if (typeof segment === 'number') {
      where += `[${segment}]`;
      node = Array.isArray(node) ? node[segment] : undefined;
      const label = node && typeof node === 'object' ? ((node as Record<string, unknown>).client_id ?? (node as Record<string, unknown>).email ?? (node as Record<string, unknown>).identifier ?? (node as Record<string, unknown>).codename ?? (node as Record<string, unknown>).name) : undefined;
      if (typeof label === 'string' && i === 1) where += ` (${label})`;
    } else {
      where += where ? `.${String(segment)}` : String(segment);
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[String(segment)] : undefined;
    }
  }
  return `${where || 'file'}: ${issue.message}`;
}

export async function readBootstrapFile(file: string): Promise<BootstrapDocument> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new BootstrapError(file, [`cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`]);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new BootstrapError(file, [`not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`]);
  }
  const result = bootstrapSchema.safeParse(raw ?? {});
  if (!result.success) throw new BootstrapError(file, result.error.issues.map((i) => describeIssue(raw, i)));
  return result.data;
}

export interface BootstrapSummary {
  clients: Record<string, 'created' | 'updated' | 'unchanged'>;
  users: Record<string, 'created' | 'updated' | 'unchanged'>;
  resource_servers: Record<string, 'created' | 'updated' | 'unchanged'>;
  /** Present when the file declares permissions, roles, grants or role assignments. */
  authorization?: RbacBootstrapSummary;
}

export function createBootstrapService(deps: {
  db: Db;
  audit: AuditService;
  passwords: PasswordHasher;
  policy: PasswordPolicy;
  clientDeps: Omit<ClientServiceDeps, 'db' | 'audit'>;
  /** What the authorization part's writes need beyond the transaction (they go through the rbac write path). */
  rbac: RbacBootstrapDeps;
}) {
  return {
    /** Applies a document in one transaction: on any error nothing is written. */
    async applyBootstrap(doc: BootstrapDocument, actor: AuditEvent['actor'], source: string): Promise<BootstrapSummary> {
      // Hash outside the transaction: slow work must not hold a connection and locks.
      const hashes = new Map<string, string>();
      for (const [i, u] of doc.users.entries()) {
        if (!u.password) continue;
        try {
          await deps.policy.check(u.password, { email: u.email, name: u.name });
        } catch (err) {
          if (err instanceof AppError) throw new BootstrapError(source, [`users[${i}].password: ${err.message}`]);
          throw err;
        }
        hashes.set(u.email, await deps.passwords.hash(u.password));
      }

      // Validate outside the transaction too: it loads keys through the pool, and PGlite has one connection.
      const validator = createClientService({ ...deps.clientDeps, db: deps.db, audit: deps.audit });
      const declaredClients: ValidatedClient[] = [];
      for (const { roles: _roles, ...c } of doc.clients) declaredClients.push(await validator.validateDeclaredClient(c));

      const events: AuditEvent[] = [];
      const collect: AuditService = { record: async (e) => void events.push(e), flush: async () => {} };
      const summary: BootstrapSummary = { clients: {}, users: {}, resource_servers: {} };
      const declaresAuthorization =
        doc.permissions.length > 0 || doc.roles.length > 0 || doc.grants.length > 0 || doc.users.some((u) => u.roles?.length) || doc.clients.some((c) => c.roles?.length);

      await deps.db.transaction(async (tx) => {
        const clients = createClientService({ ...deps.clientDeps, db: tx, audit: collect });
        for (const c of declaredClients) summary.clients[c.clientId] = await clients.applyClient(c, actor);

        const users = createUserQueries(tx);
        for (const u of doc.users) {
          const existing = await users.findUserByEmail(u.email);
          if (!existing) {
            const created = await users.insertUser({
              email: u.email,
              name: u.name ?? null,
              phone: u.phone ?? null,
              passwordHash: hashes.get(u.email) ?? u.password_hash ?? null,
              emailVerified: u.email_verified ?? false,
              disabled: u.disabled ?? false,
            });
            events.push({ type: 'user.created', outcome: 'success', actor, subject: { type: 'user', id: created.id }, details: { email: u.email, source } });
            summary.users[u.email] = 'created';
            continue;
          }
          // Declared profile fields follow the file; the password never does once the user exists.
          const changes: Record<string, unknown> = {};
          if (u.name !== undefined && u.name !== existing.name) changes.name = u.name;
          if (u.phone !== undefined && u.phone !== existing.phone) changes.phone = u.phone;
          if (u.email_verified !== undefined && u.email_verified !== existing.emailVerified) changes.emailVerified = u.email_verified;
          if (u.disabled !== undefined && u.disabled !== existing.disabled) changes.disabled = u.disabled;
          if (Object.keys(changes).length === 0) {
            summary.users[u.email] = 'unchanged';
            continue;
          }
          await users.updateUser(existing.id, changes);
          events.push({ type: 'user.updated', outcome: 'success', actor, subject: { type: 'user', id: existing.id }, details: { changes, source } });
          summary.users[u.email] = 'updated';
        }

        const resources = createClientQueries(tx);
        for (const r of doc.resource_servers) {
          const existing = await resources.findResourceServer(r.identifier);
          const values = {
            identifier: r.identifier,
            name: r.name ?? null,
            scope: r.scope,
            accessTokenFormat: r.access_token_format,
            accessTokenTtl: r.access_token_ttl ?? null,
            authorizationClaims: r.authorization_claims,
          };
          if (
            existing &&
            existing.name === values.name &&
            existing.scope === values.scope &&
            existing.accessTokenFormat === values.accessTokenFormat &&
            existing.accessTokenTtl === values.accessTokenTtl &&
            existing.authorizationClaims === values.authorizationClaims
          ) {
            summary.resource_servers[r.identifier] = 'unchanged';
            continue;
          }
          await resources.upsertResourceServer(values);
          events.push({
            type: existing ? 'resource_server.updated' : 'resource_server.created',
            outcome: 'success',
            actor,
            subject: { type: 'resource_server', id: r.identifier },
            details: { source },
          });
          summary.resource_servers[r.identifier] = existing ? 'updated' : 'created';
        }

        if (declaresAuthorization) {
          try {
            summary.authorization = await applyRbacBootstrap(
              tx,
              {
                permissions: doc.permissions,
                roles: doc.roles,
                grants: doc.grants,
                userRoles: doc.users.filter((u) => u.roles?.length).map((u) => ({ email: u.email, roles: u.roles ?? [] })),
                clientRoles: doc.clients.filter((c) => c.roles?.length).map((c) => ({ clientId: c.client_id, roles: c.roles ?? [] })),
              },
              actor,
              source,
              events,
              deps.rbac,
            );
          } catch (err) {
            throw err instanceof BootstrapReferenceError ? new BootstrapError(source, err.problems) : err;
          }
        }
      });

      // Audit only after the transaction committed, so the log never describes a change that was rolled back.
      if (events.length) {
        await Promise.all(events.map((e) => deps.audit.record(e)));
        await deps.audit.record({ type: 'bootstrap.applied', outcome: 'success', actor, details: { source, summary } });
      }
      return summary;
    },
  };
}
export type BootstrapService = ReturnType<typeof createBootstrapService>;
