/**
 * A separate process that writes audit rows the way the service does (its own connection and transactions),
 * driven line by line on standard input so a test can interleave two of them exactly:
 *   begin | xid | insert LABEL | commit | burst N | exit   → one line "ok [result]" (or "error message") each.
 * `burst N` runs N transactions of two rows each, with a random pause between the rows, so transactions of
 * concurrent writers commit out of id order.
 */
import { createInterface } from 'node:readline';
import postgres from 'postgres';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is required');
const sql = postgres(url, { max: 1, onnotice: () => {} });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const insert = (label: string) =>
  sql<Array<{ id: string; seq: string }>>`insert into audit_events (type, outcome, actor_type, details) values ('login', 'failure', 'anonymous', ${sql.json({ label, writer: process.pid })}) returning id, seq::text`;

for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(/\s+/);
  try {
    if (command === 'begin') await sql`begin`;
    else if (command === 'xid') process.stdout.write(`ok ${(await sql<Array<{ xid: string }>>`select pg_current_xact_id()::text as xid`)[0]?.xid}\n`);
    else if (command === 'insert') {
      const [row] = await insert(arg ?? '');
      process.stdout.write(`ok ${row?.id} ${row?.seq}\n`);
    } else if (command === 'commit') await sql`commit`;
    else if (command === 'burst') {
      for (let i = 0; i < Number(arg); i++) {
        await sql.begin(async (tx) => {
          await tx`insert into audit_events (type, outcome, actor_type, details) values ('login', 'failure', 'anonymous', ${sql.json({ burst: i, part: 1 })})`;
          await pause(Math.random() * 20);
          await tx`insert into audit_events (type, outcome, actor_type, details) values ('login', 'failure', 'anonymous', ${sql.json({ burst: i, part: 2 })})`;
        });
      }
    } else if (command === 'exit') break;
    else throw new Error(`unknown command ${command}`);
    if (command !== 'xid' && command !== 'insert') process.stdout.write('ok\n');
  } catch (err) {
    process.stdout.write(`error ${(err as Error).message}\n`);
  }
}
await sql.end();
