/**
 * Builds the framework-free services from configuration and a database. The HTTP app and the CLI both
 * use this, so they share one wiring and one set of rules.
 */
import type { Config } from '../config/index.js';
import type { Database } from '../db/client.js';
import { deriveKey } from '../lib/crypto.js';
import { buildProvider, clientSecretKey } from '../oidc/provider.js';
import { createClientQueries } from '../queries/clients.js';
import { createUserQueries } from '../queries/users.js';
import { createAuditService, type AuditLogger } from './audit.js';
import { createBootstrapService } from './bootstrap.js';
import { createClientService } from './clients.js';
import { createPasswordHasher } from './password.js';
import { createDecisionCache, RBAC_CHANNEL } from './rbac/cache.js';
import { createRbacService } from './rbac/service.js';
import { createUserAdminService } from './user-admin.js';
import { sql } from 'drizzle-orm';
import { createSigningKeyService } from './signing-keys.js';
import { createUserService } from './users.js';

export function createServices(deps: { config: Config; database: Database; log: AuditLogger }) {
  const { config, database } = deps;
  const db = database.db;
  const audit = createAuditService({ db, log: deps.log });
  const passwords = createPasswordHasher();
  const userQueries = createUserQueries(db);
  const clientQueries = createClientQueries(db);
  const keys = createSigningKeyService({
    db,
    audit,
    encryptionKey: deriveKey(config.secret, 'signing-key-encryption'),
    maxSignedTtlSeconds: Math.max(config.ttl.idToken, config.ttl.accessToken, config.ttl.clientCredentials),
    rotationDelaySeconds: config.keys.rotationDelay,
  });
  const cache = createDecisionCache({ db });
  const rbac = createRbacService({ db, audit, cache });
  const providerDeps = { config, db, users: userQueries, clients: clientQueries, authorization: { effectiveOf: rbac.effectiveOf } };

  // oidc-provider's own client validation, from a provider built with the same configuration.
  let validator: Promise<(metadata: Record<string, unknown>) => Promise<void>> | undefined;
  const validateMetadata = async (metadata: Record<string, unknown>) => {
    validator ??= keys.loadKeySet().then((keySet) => {
      const { Client } = buildProvider(providerDeps, keySet) as unknown as { Client: { validate(m: unknown): Promise<void> } };
      return (m) => Client.validate(m);
    });
    await (await validator)(metadata);
  };
  const clientDeps = { secretKey: clientSecretKey(config), validateMetadata };

  const users = createUserService({ db, passwords, audit });
  /** Tells every replica (and this one) that effective permissions changed outside an rbac transaction. */
  const notifyRbacChanged = async () => {
    await db.execute(sql`select pg_notify(${RBAC_CHANNEL}, 'changed')`);
    cache.invalidate();
  };

  return {
    audit,
    rbac,
    userAdmin: createUserAdminService({ db, audit, users, onChange: notifyRbacChanged }),
    passwords,
    keys,
    providerDeps,
    users,
    clients: createClientService({ db, audit, ...clientDeps }),
    bootstrap: createBootstrapService({ db, audit, passwords, clientDeps }),
  };
}
export type Services = ReturnType<typeof createServices>;
