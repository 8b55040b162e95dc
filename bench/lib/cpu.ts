/**
 * CPU time spent by the server under test, by PostgreSQL (every local `postgres` process) and by the bench
 * itself (autocannon) during a run, from /proc (Linux; elsewhere only the bench's own time is known).
 */
import { readdir, readFile } from 'node:fs/promises';

/** USER_HZ: 100 on every Linux architecture Node supports. */
const TICKS_PER_SECOND = 100;

async function processTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

let benchDatabase: string | undefined;
/**
 * Count only PostgreSQL work done for the bench: backends connected to this database, plus the server's own
 * background processes (WAL writer, checkpointer ...: our commits are their work). Other databases' backends
 * (other programs sharing the server) are left out.
 */
export function countPostgresDatabase(name: string): void {
  benchDatabase = name;
}

/** A backend's title is "postgres: [cluster: ]user database host(port) state"; a background process has no user. */
function countsForBench(cmdline: string): boolean {
  if (!cmdline.startsWith('postgres: ')) return true; // the postmaster
  const title = cmdline.slice('postgres: '.length).replace(/^\S+\/\S+: /, '');
  const words = title.split(' ');
  const isBackend = words.length >= 3 && /\(\d+\)$|\[local\]/.test(words[2] ?? '');
  return !isBackend || benchDatabase === undefined || words[1] === benchDatabase;
}

/** Ticks per PostgreSQL process that counts for the bench (see countPostgresDatabase). */
async function postgresTicks(): Promise<Map<number, number> | undefined> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  const ticks = new Map<number, number>();
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (pid) => {
        const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
        if (comm.trim() !== 'postgres') return;
        const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
        if (!countsForBench(cmdline)) return;
        const t = await processTicks(Number(pid));
        if (t !== undefined) ticks.set(Number(pid), t);
      }),
  );
  return ticks.size ? ticks : undefined;
}

/** All CPUs together, from /proc/stat: [busy, total] ticks. */
async function machineTicks(): Promise<[number, number] | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const [, ...values] = line.trim().split(/\s+/);
    const n = values.map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    const idle = (n[3] ?? 0) + (n[4] ?? 0); // idle + iowait
    return [total - idle, total];
  } catch {
    return undefined;
  }
}

/** Share of all CPUs busy over `ms` milliseconds (0..1), or undefined off Linux. */
export async function machineLoad(ms: number): Promise<number | undefined> {
  const a = await machineTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = await machineTicks();
  return a && b ? (b[0] - a[0]) / Math.max(b[1] - a[1], 1) : undefined;
}

export interface CpuSnapshot {
  server?: number;
  postgres?: Map<number, number>;
  machine?: [number, number];
  bench: NodeJS.CpuUsage;
}

export async function cpuSnapshot(serverPid: number | undefined, withPostgres: boolean): Promise<CpuSnapshot> {
  const [server, postgres, machine] = await Promise.all([
    serverPid === undefined ? undefined : processTicks(serverPid),
    withPostgres ? postgresTicks() : undefined,
    machineTicks(),
  ]);
  return {
    ...(server !== undefined ? { server } : {}),
    ...(postgres !== undefined ? { postgres } : {}),
    ...(machine ? { machine } : {}),
    bench: process.cpuUsage(),
  };
}

export interface CpuUse {
  /** CPU seconds of the server process. */
  serverSeconds?: number;
  /**
   * CPU seconds of the local PostgreSQL processes that work for the bench (countPostgresDatabase): per process,
   * so a backend that exits during the run is missed (never subtracted) and one that starts counts whole.
   */
  postgresSeconds?: number;
  /** CPU seconds of the bench process (autocannon). */
  benchSeconds: number;
  /** Share of all CPUs that was busy (any process, kernel included), 0..1. */
  machineBusy?: number;
  /**
   * Busy CPU seconds not accounted to the server, PostgreSQL or the bench: the kernel's loopback networking
   * and anything else running on the machine (a large value means the numbers are disturbed).
   */
  otherSeconds?: number;
}

export function cpuUse(before: CpuSnapshot, after: CpuSnapshot): CpuUse {
  const ticks = (a?: number, b?: number) => (a !== undefined && b !== undefined ? +((b - a) / TICKS_PER_SECOND).toFixed(2) : undefined);
  const server = ticks(before.server, after.server);
  let postgres: number | undefined;
  if (before.postgres && after.postgres) {
    let sum = 0;
    for (const [pid, t] of after.postgres) sum += t - (before.postgres.get(pid) ?? 0);
    postgres = +(sum / TICKS_PER_SECOND).toFixed(2);
  }
  const bench = (after.bench.user + after.bench.system - before.bench.user - before.bench.system) / 1e6;
  const busyTicks = before.machine && after.machine ? after.machine[0] - before.machine[0] : undefined;
  const m = busyTicks !== undefined ? busyTicks / Math.max(after.machine![1] - before.machine![1], 1) : undefined;
  const other = busyTicks !== undefined ? busyTicks / TICKS_PER_SECOND - (server ?? 0) - (postgres ?? 0) - bench : undefined;
  return {
    ...(server !== undefined ? { serverSeconds: server } : {}),
    ...(postgres !== undefined ? { postgresSeconds: postgres } : {}),
    benchSeconds: +bench.toFixed(2),
    ...(m !== undefined ? { machineBusy: +m.toFixed(3) } : {}),
    ...(other !== undefined ? { otherSeconds: +other.toFixed(2) } : {}),
  };
}
