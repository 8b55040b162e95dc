/**
 * No audit row stays unsealed for good, although transactions commit out of id order: writers in two
 * separate processes interleave so that a later-inserted row commits first and is sealed while an earlier
 * one is still uncommitted; the earlier row is sealed by the next seal. Then two replicas seal on their own
 * schedule while both writers commit bursts out of order: every row ends up in exactly one seal and the chain
 * verifies. PostgreSQL only (PGlite is single-process).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { selectRows } from '../../src/db/client.js';
import { onPostgres } from '../helpers/db.js';
import { startServerProcess } from '../helpers/process.js';
import { cliEnv, keryu } from '../helpers/replicas.js';
import { startServer } from '../helpers/server.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const skip = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL): PGlite is single-process';

/** A writer process (test/helpers/audit-writer.ts) and a function sending it one command, resolving with its answer. */
function startWriter(databaseUrl: string): { child: ChildProcess; send(command: string): Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/audit-writer.ts'], { cwd: root, env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl }, stdio: ['pipe', 'pipe', 'inherit'] });
  const answers: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => answers.shift()?.(line));
  return {
    child,
    send(command) {
      return new Promise((resolve, reject) => {
        answers.push((line) => (line.startsWith('ok') ? resolve(line.slice(3)) : reject(new Error(line))));
        child.stdin?.write(`${command}\n`);
      });
    },
  };
}

t.test('a row that commits late is sealed by the next seal, never skipped', { skip }, async (t) => {
  const server = await startServer({ env: { AUDIT_SEAL_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const { db } = server.db.database;
  const seals = server.app.keryu.services.auditSeals;
  const url = server.db.url as string;
  const one = startWriter(url);
  const two = startWriter(url);
  t.teardown(async () => {
    for (const w of [one, two]) {
      w.child.stdin?.end();
      if (w.child.exitCode === null) await new Promise((r) => w.child.once('exit', r));
    }
  });
  const sealOf = async (id: string) =>
    (await selectRows<{ id: number }>(db, sql`select s.id from audit_seals s where ${id}::uuid = any(s.row_ids)`)).map((r) => r.id);
  // Everything written so far (start-up events) sealed first, so what follows is about the two writers.
  const sealUntil = async (done: () => Promise<boolean>) => {
    const deadline = Date.now() + 30_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error('not sealed in time');
      await seals.sealPending();
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  // Writer one starts its transaction first (the older transaction id) but writes its row last.
  await one.send('begin');
  await one.send('xid');
  await two.send('begin');
  const [lateId, lateSeq] = (await two.send('insert late')).split(' ');
  const [earlyId, earlySeq] = (await one.send('insert early')).split(' ');
  t.ok(Number(earlySeq) > Number(lateSeq), 'the row that commits first was inserted after the one that commits late');
  await one.send('commit');

  await sealUntil(async () => (await sealOf(earlyId as string)).length > 0);
  const [earlySeal] = await sealOf(earlyId as string);
  t.same(await sealOf(lateId as string), [], 'the uncommitted row is not sealed (and nothing claims it)');
  const [sealed] = await selectRows<{ last_seq: number }>(db, sql`select last_seq::int from audit_seals where id = ${earlySeal as number}`);
  t.ok((sealed?.last_seq ?? 0) > Number(lateSeq), 'a seal already reaches past the late row: "everything above the last sealed row" would skip it');

  await two.send('commit');
  await sealUntil(async () => (await sealOf(lateId as string)).length > 0);
  const [lateSeal] = await sealOf(lateId as string);
  t.ok((lateSeal ?? 0) > (earlySeal ?? 0), 'the late row is in a later seal');
  t.same(await sealOf(earlyId as string), [earlySeal], 'each row in exactly one seal');

  // The other order: the older transaction writes and commits after a younger one has committed. Sealing the
  // younger one's row now would put the older row below the sealed range for good, so it waits.
  await one.send('begin');
  await one.send('xid');
  await two.send('begin');
  const [youngerId] = (await two.send('insert younger')).split(' ');
  await two.send('commit');
  await seals.sealPending();
  t.same(await sealOf(youngerId as string), [], 'not sealed while an older transaction is still running');
  const [olderId] = (await one.send('insert older')).split(' ');
  await one.send('commit');
  await sealUntil(async () => (await sealOf(olderId as string)).length > 0 && (await sealOf(youngerId as string)).length > 0);
  t.equal((await sealOf(olderId as string)).length, 1, 'the older row sealed once');
  t.equal((await sealOf(youngerId as string)).length, 1, 'the younger row sealed once');

  const verified = await keryu(['audit', 'verify'], cliEnv(url));
  t.equal(verified.code, 0, verified.stdout + verified.stderr);
});

t.test('two replicas sealing while two processes commit out of order: every row sealed exactly once', { skip }, async (t) => {
  const server = await startServer({ env: { AUDIT_SEAL_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const { db } = server.db.database;
  const url = server.db.url as string;
  const replicas = await Promise.all([0, 1].map(() => startServerProcess({ databaseUrl: url, issuer: server.issuer, env: { AUDIT_SEAL_INTERVAL: '1' } })));
  t.teardown(() => Promise.all(replicas.map((r) => r.stop())));
  const writers = [startWriter(url), startWriter(url)];
  t.teardown(async () => {
    for (const w of writers) {
      w.child.stdin?.end();
      if (w.child.exitCode === null) await new Promise((r) => w.child.once('exit', r));
    }
  });

  await Promise.all(writers.map((w) => w.send('burst 150')));
  const deadline = Date.now() + 60_000;
  let left = -1;
  // Rows keep arriving (the replicas' own events); what matters is the writers' rows, all written by now.
  while (Date.now() < deadline) {
    const [writerRows] = await selectRows<{ n: number }>(
      db,
      sql`select count(*)::int as n from audit_events e where e.details ? 'burst' and not exists (select 1 from audit_seals s where e.id = any(s.row_ids))`,
    );
    left = writerRows?.n ?? -1;
    if (left === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(left, 0, 'every row of both writers is sealed');
  const [twice] = await selectRows<{ n: number }>(db, sql`select count(*)::int as n from (select r.row_id from audit_seals, unnest(row_ids) as r(row_id) group by r.row_id having count(*) > 1) d`);
  t.equal(twice?.n, 0, 'no row in two seals');
  const [bursts] = await selectRows<{ n: number; sealed: number }>(
    db,
    sql`select count(*)::int as n, count(*) filter (where exists (select 1 from audit_seals s where e.id = any(s.row_ids)))::int as sealed from audit_events e where e.details ? 'burst'`,
  );
  t.equal(bursts?.n, 600, 'both writers wrote every row');
  t.equal(bursts?.sealed, 600);
  const [makers] = await selectRows<{ n: number }>(db, sql`select count(*)::int as n from audit_seals`);
  t.ok((makers?.n ?? 0) > 1, 'several seals along the way');

  const verified = await keryu(['audit', 'verify'], cliEnv(url));
  t.equal(verified.code, 0, verified.stdout + verified.stderr);
});
