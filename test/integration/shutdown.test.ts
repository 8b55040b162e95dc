/**
 * Graceful shutdown of a real server process under steady load: on SIGTERM readiness fails at once while
 * every request is still served for SHUTDOWN_DELAY; then the listener stops accepting, a request already in
 * flight is finished, the audit queue is flushed (every token issued has its event in the database) and the
 * process exits 0.
 */
import { and, count, eq } from 'drizzle-orm';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { NO_RATE_LIMITS } from '../helpers/auth.js';
import { createTestDatabase, onPostgres } from '../helpers/db.js';
import { seedClient } from '../helpers/oidc.js';
import { startServerProcess } from '../helpers/process.js';
import { basicAuth, endpoint, tokenRequest, waitFor } from '../helpers/replicas.js';
import { startServer } from '../helpers/server.js';

const SKIP = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL)';
const SHUTDOWN_DELAY = 5;

/** True once a new TCP connection to the port is refused: the listener has stopped accepting. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

t.test('SIGTERM under steady load: no request fails, no audit event is lost, exit 0', { skip: SKIP }, async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const seeder = await startServer({ db });
  const machine = await seedClient(seeder, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  await seeder.close();
  const credentials = { clientId: machine.clientId, clientSecret: machine.clientSecret! };

  const server = await startServerProcess({ databaseUrl: db.url!, env: { ...NO_RATE_LIMITS, SHUTDOWN_DELAY: String(SHUTDOWN_DELAY) } });
  t.teardown(() => server.stop());
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
  const port = Number(new URL(server.origin).port);

  t.equal((await fetch(`${server.origin}/metrics`)).status, 404, 'metrics are not on the public port');
  const scrape = await fetch(`${server.metricsOrigin}/metrics`);
  t.equal(scrape.status, 200, 'but on METRICS_PORT');
  t.match(await scrape.text(), /^keryu_build_info\{version="[^"]+",node_version="[^"]+"\} 1$/m);

  const load = { issued: 0, issuedWhileDraining: 0, failures: [] as string[], draining: false, stop: false };
  const worker = async () => {
    while (!load.stop) {
      try {
        const res = await tokenRequest(server, credentials, { grant_type: 'client_credentials' });
        if (res.status === 200 && typeof res.body.access_token === 'string') {
          load.issued++;
          if (load.draining) load.issuedWhileDraining++;
        } else {
          load.failures.push(`${res.status} ${JSON.stringify(res.body)}`);
        }
      } catch (err) {
        load.failures.push(String(err));
      }
    }
  };
  const workers = Array.from({ length: 4 }, () => worker());
  await waitFor(async () => (load.issued >= 40 ? true : undefined), 60_000, 'steady load');

  const signalledAt = Date.now();
  server.child.kill('SIGTERM');
  const unready = await waitFor(async () => {
    const res = await fetch(`${server.origin}/readyz`);
    return res.status === 503 ? res.json() : undefined;
  }, 5_000, 'readiness to fail');
  t.same(unready, { status: 'unready', failing: ['draining'] }, 'readiness fails at once, saying why');
  t.equal((await fetch(`${server.origin}/healthz`)).status, 200, 'liveness still passes: draining is not dying');

  // The load balancer takes a moment to notice; requests sent meanwhile are still served.
  load.draining = true;
  await waitFor(async () => (load.issuedWhileDraining >= 10 ? true : undefined), SHUTDOWN_DELAY * 1000, 'requests served while draining');
  load.stop = true;
  await Promise.all(workers);

  // A request already in flight when the listener closes: headers sent now, the body only once the
  // listener refuses new connections.
  const body = new URLSearchParams({ grant_type: 'client_credentials' }).toString();
  const inFlight = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpRequest(endpoint(server, '/token'), {
      method: 'POST',
      headers: { authorization: basicAuth(credentials.clientId, credentials.clientSecret), 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length), accept: 'application/json' },
    });
    req.once('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.once('error', reject);
    req.flushHeaders();
    waitFor(async () => ((await refusesConnections(port)) ? true : undefined), (SHUTDOWN_DELAY + 5) * 1000, 'the listener to stop accepting', 20).then(
      () => req.end(body),
      reject,
    );
  });
  const finished = await inFlight;
  t.equal(finished.status, 200, `the request in flight at close is finished (${finished.text.slice(0, 80)})`);

  const code = await exited;
  const elapsed = (Date.now() - signalledAt) / 1000;
  t.equal(code, 0, 'exit status 0');
  t.ok(elapsed < SHUTDOWN_DELAY + 5, `exited ${elapsed.toFixed(1)} s after SIGTERM (delay ${SHUTDOWN_DELAY} s)`);
  t.same(load.failures, [], `no request failed (${load.issued} tokens issued, ${load.issuedWhileDraining} while draining)`);

  const [stored] = await db.database.db
    .select({ n: count() })
    .from(auditEvents)
    .where(and(eq(auditEvents.type, 'oidc.grant'), eq(auditEvents.outcome, 'success')));
  t.equal(stored?.n, load.issued + 1, 'every token issued has its audit event, the last one included');
  t.notMatch(server.output(), /shutdown timed out|error during shutdown/, 'a clean shutdown');
});
