/**
 * Tokens at rest: refresh tokens, personal tokens, login challenge ids, password reset tokens and security
 * report tokens are stored as a keyed digest (HMAC-SHA-256 under a key derived from KERYU_SECRET), so a
 * copy of a table cannot be matched against sha256(token) or guesses offline. Rows written before the keyed
 * digest hold sha256(token) and keep working until they expire (the migration path); a refresh rotation
 * turns a legacy row's family keyed.
 */
import t from 'tap';
import { eq, inArray } from 'drizzle-orm';
import { authRefreshTokens, authTokens, loginChallenges, passwordResetTokens, securityReports } from '../../src/db/schema/index.js';
import { createTokenDigest, deriveKey, sha256 } from '../../src/lib/crypto.js';
import { api, type Pair } from '../helpers/auth.js';
import { challengeFor, enrolTotp, isPair, seedWithSession, startMfaServer, totpAt, verify, type MfaServer } from '../helpers/mfa.js';
import type { TestServer } from '../helpers/server.js';

/** The token of the first link matching `link` in the mail sent so far (waits for it). */
async function tokenInMail(smtp: MfaServer['smtp'], link: RegExp): Promise<string> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    for (const m of smtp.messages) {
      const token = link.exec(m.text)?.[1];
      if (token) return decodeURIComponent(token);
    }
  }
  throw new Error(`no mail with ${link}`);
}
const RESET_LINK = /\/password\/reset\?token=([A-Za-z0-9_%-]+)/;
const REPORT_LINK = /\/security\/report\?token=([A-Za-z0-9_%-]+)/;

const refresh = (server: TestServer, refreshToken: string) => api<Pair & { error?: string }>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: refreshToken } });

/** Every digest column of the five tables, as a leaked copy would hold them. */
async function tableCopy(server: TestServer): Promise<string[]> {
  const db = server.app.keryu.database.db;
  return [
    ...(await db.select({ h: authRefreshTokens.tokenHash }).from(authRefreshTokens)).map((r) => r.h),
    ...(await db.select({ h: authTokens.tokenHash }).from(authTokens)).flatMap((r) => (r.h ? [r.h] : [])),
    ...(await db.select({ h: loginChallenges.challengeHash }).from(loginChallenges)).map((r) => r.h),
    ...(await db.select({ h: passwordResetTokens.tokenHash }).from(passwordResetTokens)).map((r) => r.h),
    ...(await db.select({ h: securityReports.tokenHash }).from(securityReports)).map((r) => r.h),
  ];
}

t.test('new tokens of every kind are stored keyed: a table copy does not match sha256(token)', async (t) => {
  const { server, smtp, clock } = await startMfaServer(t);
  const keyed = createTokenDigest(deriveKey(server.config.secret, 'token-digest'));
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  const reportToken = await tokenInMail(smtp, REPORT_LINK);
  const challenge = await challengeFor(server, 'alice@example.com');
  const pat = await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: pair.access_token, body: { name: 'ci' } });
  t.equal(pat.status, 201);
  await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'alice@example.com' } });
  const resetToken = await tokenInMail(smtp, RESET_LINK);

  const issued = { refresh: pair.refresh_token, personal: pat.body.token, challenge: challenge.challenge_id, reset: resetToken, report: reportToken };
  const copy = await tableCopy(server);
  for (const [kind, token] of Object.entries(issued)) {
    t.ok(copy.includes(keyed.stored(token)), `${kind}: the keyed digest is stored`);
    t.notOk(copy.includes(sha256(token)), `${kind}: sha256(token) matches no row of the copy`);
    t.not(keyed.stored(token), sha256(token));
  }
  t.notOk(copy.some((h) => Object.values(issued).includes(h)), 'no raw token at rest');

  // And they work.
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await totpAt(secret, clock) })).body), 'the challenge');
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: pat.body.token })).status, 200, 'the personal token');
  t.equal((await refresh(server, pair.refresh_token)).status, 200, 'the refresh token');
  t.equal(await server.app.keryu.services.passwordManagement.isResetTokenUsable(issued.reset), true, 'the reset link');
  t.equal(await server.app.keryu.services.notices.isReportUsable(issued.report), true, 'the report link');
});

t.test('tokens stored with the legacy sha256 digest keep working; a rotation stores the successor keyed', async (t) => {
  const { server, smtp, clock } = await startMfaServer(t);
  const db = server.app.keryu.database.db;
  const keyed = createTokenDigest(deriveKey(server.config.secret, 'token-digest'));
  /** Rewrites a stored keyed digest as an older release wrote it. */
  const toLegacy = async (token: string) => {
    const [from, to] = [keyed.stored(token), sha256(token)];
    const changed =
      (await db.update(authRefreshTokens).set({ tokenHash: to }).where(eq(authRefreshTokens.tokenHash, from)).returning()).length +
      (await db.update(authTokens).set({ tokenHash: to }).where(eq(authTokens.tokenHash, from)).returning()).length +
      (await db.update(loginChallenges).set({ challengeHash: to }).where(eq(loginChallenges.challengeHash, from)).returning()).length +
      (await db.update(passwordResetTokens).set({ tokenHash: to }).where(eq(passwordResetTokens.tokenHash, from)).returning()).length +
      (await db.update(securityReports).set({ tokenHash: to }).where(eq(securityReports.tokenHash, from)).returning()).length;
    t.equal(changed, 1, 'one row made legacy');
  };

  const { pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  const reportToken = await tokenInMail(smtp, REPORT_LINK);
  const pat = await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: pair.access_token, body: { name: 'ci' } });
  await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'alice@example.com' } });
  const resetToken = await tokenInMail(smtp, RESET_LINK);
  const challenge = await challengeFor(server, 'alice@example.com');
  for (const token of [pair.refresh_token, pat.body.token, challenge.challenge_id, resetToken, reportToken]) await toLegacy(token);

  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await totpAt(secret, clock) })).body), 'a legacy challenge completes');
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: pat.body.token })).status, 200, 'a legacy personal token authenticates');
  const next = await refresh(server, pair.refresh_token);
  t.equal(next.status, 200, 'a legacy refresh token rotates');
  const successor = await db.select().from(authRefreshTokens).where(inArray(authRefreshTokens.tokenHash, [keyed.stored(next.body.refresh_token), sha256(next.body.refresh_token)]));
  t.same(successor.map((r) => r.tokenHash), [keyed.stored(next.body.refresh_token)], 'its successor is stored keyed');
  t.equal((await refresh(server, pair.refresh_token)).body.refresh_token, next.body.refresh_token, 'a retry of the legacy token is recognised as one');
  t.equal((await refresh(server, next.body.refresh_token)).status, 200, 'and the family goes on');
  t.equal(await server.app.keryu.services.notices.isReportUsable(reportToken), true, 'a legacy report link is usable');
  t.equal(await server.app.keryu.services.passwordManagement.isResetTokenUsable(resetToken), true, 'a legacy reset link is usable');
  await server.app.keryu.services.passwordManagement.confirmReset(resetToken, 'purple elephants juggle quietly', {});
  t.equal(await server.app.keryu.services.passwordManagement.isResetTokenUsable(resetToken), false, 'and single use');
});
