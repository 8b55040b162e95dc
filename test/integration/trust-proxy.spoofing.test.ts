/**
 * X-Forwarded-* reaches the provider only as Fastify's trusted-proxy logic derived it (TRUST_PROXY): a client
 * that is not a trusted proxy cannot choose the host discovery names, nor the IP its audit events record, and
 * behind a trusted hop count the entries the client prepended are ignored.
 */
import { and, eq } from 'drizzle-orm';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { seedClient } from '../helpers/oidc.js';
import { basicAuth } from '../helpers/replicas.js';
import { startServer, type TestServer } from '../helpers/server.js';

const FORGED = { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };

async function discovery(server: TestServer, headers: Record<string, string>) {
  const res = await fetch(`${server.issuer}/.well-known/openid-configuration`, { headers });
  return (await res.json()) as Record<string, string>;
}

/** A refused token request (a grant type the client may not use) is audited by the provider: the IP it records. */
async function auditedIpOfFailedGrant(server: TestServer, headers: Record<string, string>): Promise<string | null> {
  const web = await seedClient(server);
  const clientId = web.clientId;
  await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { ...headers, authorization: basicAuth(clientId, web.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  await server.app.keryu.services.audit.flush();
  const [event] = await server.db.database.db
    .select({ ip: auditEvents.ip })
    .from(auditEvents)
    .where(and(eq(auditEvents.type, 'oidc.grant'), eq(auditEvents.clientId, clientId)));
  if (!event) throw new Error('the failed grant was not audited');
  return event.ip;
}

t.test('a client that is not a trusted proxy cannot forge X-Forwarded-*', async (t) => {
  const server = await startServer({ env: { TRUST_PROXY: '10.0.0.1' } });
  t.teardown(() => server.close());

  const doc = await discovery(server, FORGED);
  t.equal(new URL(doc.token_endpoint!).origin, server.origin, 'discovery names the real origin, not the forged host');
  t.equal(doc.issuer, server.issuer);
  t.equal(await auditedIpOfFailedGrant(server, FORGED), '127.0.0.1', 'the audit log records the real address');
});

t.test('behind a trusted hop, only the address the proxy saw counts', async (t) => {
  const server = await startServer({ env: { TRUST_PROXY: '1' } });
  t.teardown(() => server.close());

  // The test client plays the proxy: the client prepended a forged entry, the proxy appended what it saw.
  const viaProxy = { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' };
  t.equal(await auditedIpOfFailedGrant(server, viaProxy), '203.0.113.9', 'the address the trusted proxy appended');
});
