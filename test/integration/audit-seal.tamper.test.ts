/**
 * Tamper evidence: a PostgreSQL superuser bypasses the append-only triggers and changes a row, deletes one,
 * inserts a forged one into a sealed range, rewrites a seal, removes a seal, and drops the newest rows;
 * `keryu audit verify` names each exactly and exits 1. The same for an exported file verified offline.
 * PostgreSQL only (the CLI shares the database with the server).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { sealBodyOf } from '../../src/services/audit-seal/canonical.js';
import { signSeal } from '../../src/services/audit-seal/signature.js';
import { generateJwk, publicPart } from '../../src/services/signing-keys.js';
import { sealAll } from '../helpers/audit.js';
import { onPostgres } from '../helpers/db.js';
import { serviceAccount } from '../helpers/rbac.js';
import { cliEnv, keryu } from '../helpers/replicas.js';
import { startServer } from '../helpers/server.js';

const skip = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL): the CLI opens the server\'s database';

t.test('keryu audit verify names each kind of tampering', { skip }, async (t) => {
  const server = await startServer({ env: { AUDIT_SEAL_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const { db } = server.db.database;
  const seals = server.app.keryu.services.auditSeals;
  const env = cliEnv(server.db.url as string);
  for (let batch = 0; batch < 3; batch++) {
    await db.insert(auditEvents).values(
      Array.from({ length: 5 }, (_, i) => ({ type: 'login', outcome: 'failure' as const, actorType: 'anonymous' as const, ip: `198.51.100.${batch * 10 + i}`, details: { batch, i } })),
    );
    await sealAll(db, seals);
  }
  const verify = (...args: string[]) => keryu(['audit', 'verify', ...args], env);

  const clean = await verify();
  t.equal(clean.code, 0, clean.stdout + clean.stderr);
  t.match(clean.stdout, /^audit log intact: \d+ seal\(s\), \d+ row\(s\) checked/);
  const last = /newest seal #(\d+), digest ([0-9a-f]{64})/.exec(clean.stdout);
  t.ok(last, 'prints the newest seal digest to keep');
  const [, lastId, keptDigest] = last ?? [];
  t.ok(Number(lastId) >= 3, 'several seals');

  const superuser = postgres(server.db.url as string, { max: 1, onnotice: () => {} });
  t.teardown(() => superuser.end());
  // A superuser can switch the append-only triggers off for its session.
  await superuser`set session_replication_role = replica`;
  const [target] = await superuser<Array<{ id: string; details: string }>>`select e.id, e.details::text as details from audit_events e where e.details->>'batch' = '1' order by e.seq limit 1`;
  const sealOf = async (id: string) =>
    (await superuser<Array<{ id: number }>>`select s.id from audit_seals s, audit_events e where e.id = ${id} and (s.upper_tx, s.upper_seq) >= (e.tx_id, e.seq) order by s.upper_tx, s.upper_seq limit 1`)[0]?.id;
  const targetId = target?.id as string;
  const targetSeal = await sealOf(targetId);
  t.ok(targetSeal, 'the target row is sealed');

  const expectProblem = async (what: string, pattern: RegExp, code: string) => {
    const result = await verify();
    t.equal(result.code, 1, `${what}: exit 1`);
    t.match(result.stdout, pattern, `${what}: ${result.stdout.trim()}`);
    const json = JSON.parse((await keryu(['audit', 'verify', '--json'], env)).stdout) as { ok: boolean; problem: { code: string } };
    t.equal(json.ok, false);
    t.equal(json.problem.code, code);
  };
  const expectIntact = async (what: string) => {
    const result = await verify();
    t.equal(result.code, 0, `${what}: intact again (${result.stdout.trim()})`);
  };

  // A row changed.
  await superuser`update audit_events set details = '{"batch": 1, "i": 99}' where id = ${targetId}`;
  await expectProblem('details changed', new RegExp(`row ${targetId} changed since seal #${targetSeal}`), 'row_changed');
  await superuser`update audit_events set details = ${target?.details as string}::jsonb where id = ${targetId}`;
  await expectIntact('details restored');

  // A row deleted.
  await superuser`create temporary table saved_row as select * from audit_events where id = ${targetId}`;
  await superuser`delete from audit_events where id = ${targetId}`;
  await expectProblem('row deleted', new RegExp(`row ${targetId} deleted \\(sealed by seal #${targetSeal}\\)`), 'row_deleted');
  await superuser`insert into audit_events overriding system value select * from saved_row`;
  await expectIntact('row restored');

  // A forged row inserted into a sealed range (its seal key copied from a sealed row).
  const [forged] = await superuser<Array<{ id: string }>>`
    insert into audit_events (type, outcome, actor_type, details, occurred_at, seq, tx_id) overriding system value
    select 'user.unlocked', 'success', 'cli', '{}', occurred_at, seq, tx_id from audit_events where id = ${targetId} returning id`;
  await expectProblem('forged row', new RegExp(`row ${forged?.id} inserted into the range of seal #${targetSeal}`), 'row_inserted');
  await superuser`delete from audit_events where id = ${forged?.id as string}`;
  await expectIntact('forged row gone');

  // A seal rewritten: its count (the signature no longer matches), then one entry of its row list.
  const sealId = targetSeal as number;
  await superuser`update audit_seals set row_count = row_count - 1 where id = ${sealId}`;
  await expectProblem('seal count rewritten', new RegExp(`seal #${sealId} changed: the signed statement differs from the stored seal`), 'seal_changed');
  await superuser`update audit_seals set row_count = row_count + 1 where id = ${sealId}`;
  const [entry] = await superuser<Array<{ digest: string }>>`select row_digests[1] as digest from audit_seals where id = ${sealId}`;
  await superuser`update audit_seals set row_digests[1] = ${'0'.repeat(64)} where id = ${sealId}`;
  await expectProblem('seal row list rewritten', new RegExp(`seal #${sealId} changed: its row list does not match the signed digest`), 'seal_changed');
  await superuser`update audit_seals set row_digests[1] = ${entry?.digest as string} where id = ${sealId}`;
  await expectIntact('seal restored');

  // A seal rewritten and signed again with a key of the attacker's, added to the key table: it is not ours
  // (its private half does not decrypt with our secret), so the signature does not count.
  const [stored] = await superuser<Array<Record<string, unknown>>>`select id, sealed_at, lower_tx::int, lower_seq::int, upper_tx::int, upper_seq::int, first_seq::int, last_seq::int, row_count, digest, previous_digest, kid, signature from audit_seals where id = ${sealId}`;
  const forgedKey = generateJwk('ES256');
  await superuser`insert into audit_signing_keys (kid, public_jwk, private_jwk_encrypted) values (${forgedKey.kid}, ${superuser.json(publicPart(forgedKey) as Record<string, string>)}, 'v1.x.y.z')`;
  const fields = {
    id: sealId,
    sealedAt: stored?.sealed_at as Date,
    lowerTx: stored?.lower_tx as number,
    lowerSeq: stored?.lower_seq as number,
    upperTx: stored?.upper_tx as number,
    upperSeq: stored?.upper_seq as number,
    firstSeq: stored?.first_seq as number,
    lastSeq: stored?.last_seq as number,
    rowCount: (stored?.row_count as number) - 1,
    digest: stored?.digest as string,
    previousDigest: stored?.previous_digest as string | null,
    kid: forgedKey.kid,
    signature: '',
  };
  const resigned = await signSeal(sealBodyOf(fields), forgedKey);
  await superuser`update audit_seals set row_count = ${fields.rowCount}, kid = ${forgedKey.kid}, signature = ${resigned} where id = ${sealId}`;
  await expectProblem('seal re-signed with a foreign key', new RegExp(`seal #${sealId} changed: signed with key ${forgedKey.kid}, which is not an audit signing key`), 'seal_changed');
  await superuser`update audit_seals set row_count = ${stored?.row_count as number}, kid = ${stored?.kid as string}, signature = ${stored?.signature as string} where id = ${sealId}`;
  await expectIntact('seal signature restored');

  // A seal removed from the middle of the chain.
  await superuser`create temporary table saved_seal as select * from audit_seals where id = ${sealId}`;
  await superuser`delete from audit_seals where id = ${sealId}`;
  await expectProblem('seal removed', new RegExp(`seal #${sealId} removed \\(the chain continues with seal #${sealId + 1}\\)`), 'seal_removed');
  await superuser`insert into audit_seals select * from saved_seal`;
  await expectIntact('seal back');

  // The newest rows dropped together with their seal: the chain itself is consistent, so only the digest
  // the operator kept shows it.
  const newest = Number(lastId);
  const [cut] = await superuser<Array<{ lower_tx: string; lower_seq: string }>>`select lower_tx::text, lower_seq::text from audit_seals where id = ${newest}`;
  await superuser`delete from audit_events where (tx_id, seq) > (${cut?.lower_tx as string}::bigint, ${cut?.lower_seq as string}::bigint)`;
  await superuser`delete from audit_seals where id = ${newest}`;
  t.equal((await verify()).code, 0, 'without a kept digest a clean cut is invisible');
  const truncated = await verify('--expect-digest', keptDigest as string);
  t.equal(truncated.code, 1);
  t.match(truncated.stdout, new RegExp(`newest rows truncated: the kept seal digest ${keptDigest} is not in the chain \\(newest seal: #${newest - 1} `));
  t.equal((await verify('--from', String(newest - 1))).code, 0, '--from starts at a later seal');
  const [older] = await superuser<Array<{ digest: string }>>`select digest from audit_seals where id = 1`;
  t.equal((await verify('--from', String(newest - 1), '--expect-digest', older?.digest as string)).code, 0, 'a kept digest before --from is found');

  // The sealing job of the server that made the cut-off seal notices too, and records it for alerting.
  const run = await seals.sealPending();
  t.match(run.broken, { code: 'truncated', seal: newest });
  await server.app.keryu.services.audit.flush();
  const [broken] = await superuser<Array<{ details: { problem: string } }>>`select details from audit_events where type = 'audit.seal_broken' order by seq desc limit 1`;
  t.equal(broken?.details.problem, 'truncated', 'audit.seal_broken recorded');
});

t.test('an exported file verifies offline with the public keys, and tampering with it is named', { skip }, async (t) => {
  const server = await startServer({ env: { AUDIT_SEAL_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const { db } = server.db.database;
  const { token } = await serviceAccount(server, ['admin']);
  for (let batch = 0; batch < 2; batch++) {
    await db.insert(auditEvents).values(Array.from({ length: 4 }, (_, i) => ({ type: 'login', outcome: 'failure' as const, actorType: 'anonymous' as const, details: { batch, i, note: 'x'.repeat(i) } })));
    await sealAll(db, server.app.keryu.services.auditSeals);
  }
  const dir = await mkdtemp(join(tmpdir(), 'keryu-audit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const exported = await (await fetch(`${server.origin}/api/auth/audit/export/`, { headers: { authorization: `Bearer ${token}` } })).text();
  const jwks = await (await fetch(`${server.origin}/api/auth/audit/keys/`)).text();
  await writeFile(join(dir, 'keys.json'), jwks);
  const lines = exported.trim().split('\n');
  const check = async (name: string, content: string[], ...extra: string[]) => {
    await writeFile(join(dir, name), `${content.join('\n')}\n`);
    // Offline: no database in the environment.
    return keryu(['audit', 'verify', '--export', join(dir, name), '--jwks', join(dir, 'keys.json'), ...extra], { NODE_ENV: 'test', KERYU_SECRET: 'x'.repeat(32), DATA_DIR: dir });
  };

  const intact = await check('intact.ndjson', lines);
  t.equal(intact.code, 0, intact.stdout + intact.stderr);
  t.match(intact.stdout, /audit log intact: \d+ event\(s\), \d+ seal\(s\) checked/);
  const sealLines = lines.filter((l) => l.includes('"record":"seal"'));
  const lastSeal = JSON.parse(sealLines.at(-1) as string) as { id: number; digest: string };
  t.equal((await check('intact.ndjson', lines, '--expect-digest', lastSeal.digest)).code, 0, 'the kept digest is in the file');

  const sealedEvent = lines.findIndex((l) => l.includes('"record":"event"') && l.includes('"batch":1') && !l.includes('"seal":null'));
  const event = JSON.parse(lines[sealedEvent] as string) as { id: string; details: Record<string, unknown>; seal: { id: number } };
  const edited = [...lines];
  edited[sealedEvent] = JSON.stringify({ ...event, details: { ...event.details, i: 42 } });
  const changed = await check('changed.ndjson', edited);
  t.equal(changed.code, 1);
  t.match(changed.stdout, `row ${event.id} changed since seal #${event.seal.id}`);

  const dropped = lines.filter((_, i) => i !== sealedEvent);
  const deleted = await check('deleted.ndjson', dropped);
  t.equal(deleted.code, 1);
  t.match(deleted.stdout, `row ${event.id} deleted`);

  const forgedLine = JSON.stringify({ ...event, id: '00000000-0000-4000-8000-000000000001' });
  const inserted = await check('inserted.ndjson', [...lines, forgedLine]);
  t.equal(inserted.code, 1);
  t.match(inserted.stdout, `row 00000000-0000-4000-8000-000000000001 inserted into the range of seal #${event.seal.id}`);

  const firstSealIndex = lines.indexOf(sealLines[0] as string);
  const firstSeal = JSON.parse(sealLines[0] as string) as Record<string, unknown>;
  const rewritten = [...lines];
  rewritten[firstSealIndex] = JSON.stringify({ ...firstSeal, count: Number(firstSeal.count) + 1 });
  const sealChanged = await check('seal.ndjson', rewritten);
  t.equal(sealChanged.code, 1);
  t.match(sealChanged.stdout, `seal #${firstSeal.id as number} changed`);

  const withoutFirstSeal = lines.filter((_, i) => i !== firstSealIndex);
  const sealRemoved = await check('removed.ndjson', withoutFirstSeal);
  t.equal(sealRemoved.code, 1);
  t.match(sealRemoved.stdout, `seal #1 removed`);

  const truncated = await check('truncated.ndjson', lines.filter((l) => l !== sealLines.at(-1)), '--expect-digest', lastSeal.digest);
  t.equal(truncated.code, 1);
  t.match(truncated.stdout, 'newest rows truncated');

  // The CLI exports the same way; its NDJSON verifies offline too.
  const env = cliEnv(server.db.url as string);
  const cliExport = await keryu(['audit', 'export'], env);
  t.equal(cliExport.code, 0, cliExport.stderr);
  const cliLines = cliExport.stdout.trim().split('\n');
  t.ok(cliLines.length >= lines.length, 'every event');
  t.equal((await check('cli.ndjson', cliLines)).code, 0, 'a CLI export verifies offline');
  const csv = await keryu(['audit', 'export', '--type', 'login', '--from', '2000-01-01T00:00:00Z', '--format', 'csv'], env);
  t.equal(csv.code, 0);
  t.equal(csv.stdout.trim().split('\r\n').length, 1 + 8, 'a header and the eight login events');
  const badFrom = await keryu(['audit', 'export', '--from', 'yesterday'], env);
  t.equal(badFrom.code, 1);
  t.match(badFrom.stderr, /^keryu: from: must be an RFC 3339 date-time/);
  const badType = await keryu(['audit', 'export', '--type', 'nope'], env);
  t.match(badType.stderr, /^keryu: type: unknown event type "nope"/);
  t.equal((await keryu(['audit', 'export', '--format', 'xml'], env)).code, 2);

  const noKeys = await keryu(['audit', 'verify', '--export', join(dir, 'intact.ndjson')], { NODE_ENV: 'test', KERYU_SECRET: 'x'.repeat(32), DATA_DIR: dir });
  t.equal(noKeys.code, 2, 'the public keys are required');
  t.match(noKeys.stderr, /--jwks/);
  t.ok(await readFile(join(dir, 'keys.json'), 'utf8'));
});
