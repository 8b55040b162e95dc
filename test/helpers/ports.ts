/**
 * Ports for test listeners, unique across every test process on this machine.
 *
 * Test files run concurrently (tap `jobs`), and fault tests stop their own PostgreSQL or Redis and start it
 * again on the same port. A port the kernel picked (listen on port 0) can be picked again for another
 * file's listener, or as the local port of any outgoing connection, while such a server is down; the
 * restart then fails with EADDRINUSE. So ports come from a range below the kernel's ephemeral range (it
 * never hands those out by itself), and each port is reserved with an exclusive lock file naming the
 * process that holds it until that process exits. A lock whose process is gone is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const lockDir = join(tmpdir(), 'keryu-test-ports');
/** How many ports the range holds: far more than all concurrent test files together hold at once. */
const RANGE_SIZE = 8000;

/** [first, last] ports to hand out: just below the ephemeral range (Linux: ip_local_port_range). */
function portRange(): [number, number] {
  let ephemeralLow = 32768;
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && low > RANGE_SIZE + 1024) ephemeralLow = low;
  } catch {
    // Not Linux: the IANA ephemeral range starts at 49152, above this default.
  }
  return [ephemeralLow - RANGE_SIZE, ephemeralLow - 1];
}

const held = new Set<number>();
process.once('exit', () => {
  for (const port of held) rmSync(join(lockDir, String(port)), { force: true });
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock file of `port` for this process; false when a live process holds it. */
function lock(port: number): boolean {
  const file = join(lockDir, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        // Removed meanwhile: try again.
      }
      // A lock still being written (empty) counts as held.
      if (Number.isNaN(owner) || owner === 0 || processAlive(owner)) return false;
      try {
        unlinkSync(file);
      } catch {
        // Another process took it over first; its openSync wins, ours fails with EEXIST.
      }
    }
  }
  return false;
}

/** Whether nothing (outside the lock files' knowledge, e.g. another program) listens on the port. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port no other test process holds and nothing listens on; held by this process until it exits. */
export async function freePort(): Promise<number> {
  mkdirSync(lockDir, { recursive: true });
  const [first, last] = portRange();
  const size = last - first + 1;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = first + ((start + i) % size);
    if (held.has(port) || !lock(port)) continue;
    held.add(port);
    if (await bindable(port)) return port;
    // Something outside the tests listens here: keep the lock (so no test tries it again) and move on.
  }
  throw new Error(`no free test port between ${first} and ${last}`);
}
