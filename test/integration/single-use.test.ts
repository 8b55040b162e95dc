/**
 * An authorization code and a refresh token are single-use across replicas: the same one fired at two
 * server processes at once yields exactly one token response; the other request fails with invalid_grant.
 * A replayed code also revokes what the first use issued (RFC 6749 §4.1.2).
 */
import { sql } from 'drizzle-orm';
import tap from 'tap';
import * as client from 'openid-client';
import { oidcRevokedGrants } from '../../src/db/schema/index.js';
import { createTestDatabase, onPostgres } from '../helpers/db.js';
import { authorizeThroughForms, Browser, discover, REDIRECT_URI } from '../helpers/oidc.js';
import { cliEnv, introspect, keryuJson, startReplicas, tokenRequest, type ServerProcess } from '../helpers/replicas.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const SKIP = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL)';
const ROUNDS = 20;

type Result = Awaited<ReturnType<typeof tokenRequest>>;

/** Exactly one success; the other an invalid_grant error. Returns the successful body. */
function exactlyOne(t: Pick<typeof tap, 'equal' | 'ok'>, round: number, results: Result[]): Record<string, unknown> | undefined {
  const ok = results.filter((r) => r.status === 200);
  const failed = results.filter((r) => r.status !== 200);
  const summary = results.map((r) => `${r.status} ${String(r.body.error ?? '')}`).join(', ');
  t.equal(ok.length, 1, `round ${round}: exactly one 200 (${summary})`);
  t.ok(
    failed.length === 1 && failed[0]?.status === 400 && failed[0].body.error === 'invalid_grant',
    `round ${round}: the other request gets 400 invalid_grant`,
  );
  return ok[0]?.body;
}

tap.test('codes and refresh tokens are single-use across two replicas', { skip: SKIP }, async (t) => {
  const db = await createTestDatabase();
  let replicas: ServerProcess[] = [];
  t.teardown(async () => {
    try {
      await Promise.allSettled(replicas.map((r) => r.stop()));
    } finally {
      await db.drop();
    }
  });

  const env = cliEnv(db.url!);
  await keryuJson(['user', 'create', '--email', 'alice@example.com', '--email-verified', '--password-stdin'], env, `${TEST_PASSWORD}\n`);
  const created = await keryuJson<{ client_id: string; client_secret: string }>(
    [
      'client', 'create', '--client-id', 'web', '--redirect-uri', REDIRECT_URI,
      '--grant-type', 'authorization_code', '--grant-type', 'refresh_token', '--scope', 'openid offline_access',
    ],
    env,
  );
  const web = { clientId: created.client_id, clientSecret: created.client_secret };

  replicas = await startReplicas(2, db.url!);
  const [a, b] = replicas as [ServerProcess, ServerProcess];
  const config = await discover(a, web);
  // One browser for every round: it signs in once; later rounds only pass the consent page.
  const browser = new Browser();

  async function freshCode(): Promise<{ code: string; verifier: string }> {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      // offline_access is only granted with prompt=consent (OIDC Core §11).
      prompt: 'consent',
    });
    const callback = await authorizeThroughForms(a, url, { email: 'alice@example.com', password: TEST_PASSWORD }, browser);
    if (callback.searchParams.get('state') !== state) throw new Error(`unexpected callback ${callback.href}`);
    const code = callback.searchParams.get('code');
    if (!code) throw new Error(`no code in ${callback.href}`);
    return { code, verifier };
  }

  t.test(`the same authorization code at both replicas at once, ${ROUNDS} rounds`, async (t) => {
    const started = Date.now();
    for (let round = 1; round <= ROUNDS; round++) {
      const { code, verifier } = await freshCode();
      const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier };
      const results = await Promise.all([tokenRequest(a, web, fields), tokenRequest(b, web, fields)]);
      const winner = exactlyOne(t, round, results);
      if (!winner) continue;
      // The replay revoked the grant, so what the first use issued is dead too, at either replica.
      const access = await introspect(b, web, String(winner.access_token));
      t.equal(access.active, false, `round ${round}: the access token issued for the replayed code is revoked`);
      const refresh = await tokenRequest(a, web, { grant_type: 'refresh_token', refresh_token: String(winner.refresh_token) });
      t.equal(refresh.body.error, 'invalid_grant', `round ${round}: so is its refresh token`);
    }
    t.comment(`${ROUNDS} code rounds in ${Date.now() - started} ms`);
  });

  t.test(`the same refresh token at both replicas at once, ${ROUNDS} rounds`, async (t) => {
    const started = Date.now();
    const tombstones = async () =>
      (await db.database.db.select({ n: sql<number>`count(*)::int` }).from(oidcRevokedGrants))[0]?.n ?? 0;
    const revokedBefore = await tombstones();
    for (let round = 1; round <= ROUNDS; round++) {
      const { code, verifier } = await freshCode();
      const exchanged = await tokenRequest(a, web, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
      const refreshToken = exchanged.body.refresh_token;
      if (exchanged.status !== 200 || typeof refreshToken !== 'string') throw new Error(`code exchange failed: ${JSON.stringify(exchanged.body)}`);

      const fields = { grant_type: 'refresh_token', refresh_token: refreshToken };
      const results = await Promise.all([tokenRequest(a, web, fields), tokenRequest(b, web, fields)]);
      const winner = exactlyOne(t, round, results);
      if (winner) t.not(winner.refresh_token, refreshToken, `round ${round}: the winner got a rotated refresh token`);
    }
    // A loser that arrived after the winner finished is a sequential reuse and revokes the grant; one that
    // raced it (the adapter's conditional UPDATE) does not. Both are correct; this shows which was exercised.
    const sequential = (await tombstones()) - revokedBefore;
    t.comment(`${ROUNDS} refresh rounds in ${Date.now() - started} ms: ${ROUNDS - sequential} lost the race at the atomic consume, ${sequential} were seen as reuse after the fact`);
  });
});
