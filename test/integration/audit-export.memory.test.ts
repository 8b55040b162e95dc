/**
 * Exports stream in constant memory: 100,000 audit rows (about 100 MB of NDJSON) go out while the heap of
 * the process serving them stays flat. Measured in-process (the server runs in this process): the heap after
 * a garbage collection, sampled along the stream, may not grow by more than a fraction of what was sent
 * (the baseline is taken before the request, with the server warm).
 * Runs on PostgreSQL and on PGlite.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { serviceAccount } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

const ROWS = 100_000;
/** Each row carries this much text, so that buffering the export would show far above the bound. */
const PAYLOAD = 'x'.repeat(800);
const MB = 1024 * 1024;
/** Generous: a buffered export of this size would need several times the whole output (about 100 MB). */
const HEAP_GROWTH_BOUND = 40 * MB;

t.test('an export of 100,000 rows streams in flat memory', async (t) => {
  const server = await startServer({ env: { AUDIT_SEAL_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const { db } = server.db.database;
  await db.execute(sql`insert into audit_events (type, outcome, actor_type, subject_type, subject_id, occurred_at, details)
    select 'login', 'failure', 'anonymous', 'user', 'u-' || i, now() - make_interval(secs => i / 1000.0), jsonb_build_object('n', i, 'note', ${PAYLOAD}::text)
    from generate_series(1, ${ROWS}) as i`);
  const { token } = await serviceAccount(server, ['admin']);

  const baseline = heapAfterGc();
  const res = await fetch(`${server.origin}/api/auth/audit/export/?format=ndjson`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(res.status, 200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let bytes = 0;
  let lines = 0;
  let peak = 0;
  let nextSample = 5_000;
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    lines += (decoder.decode(value, { stream: true }).match(/\n/g) ?? []).length;
    if (lines >= nextSample) {
      nextSample += 5_000;
      peak = Math.max(peak, heapAfterGc() - baseline);
    }
  }
  t.ok(lines > ROWS, `a header and every row (${lines} lines)`);
  t.ok(bytes > ROWS * PAYLOAD.length, `${Math.round(bytes / MB)} MB sent`);
  t.ok(peak < HEAP_GROWTH_BOUND, `heap grew by at most ${Math.round(peak / MB)} MB while ${Math.round(bytes / MB)} MB went out`);
});
