/** Resident memory of a server process, from /proc (Linux; undefined elsewhere): idle, and the peak under load. */
import { readFile } from 'node:fs/promises';

export async function rssMiB(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Math.round(Number(kib) / 1024);
  } catch {
    return undefined;
  }
}

/** Samples every 100 ms until stopped; resolves with the highest value seen (MiB). */
export function sampleRssPeak(pid: number | undefined): { stop(): Promise<number | undefined> } {
  let peak: number | undefined;
  const sample = async () => {
    const v = await rssMiB(pid);
    if (v !== undefined && (peak === undefined || v > peak)) peak = v;
  };
  void sample();
  const timer = setInterval(() => void sample(), 100);
  return {
    async stop() {
      clearInterval(timer);
      await sample();
      return peak;
    },
  };
}

export interface RssFigures {
  idleMiB?: number;
  peakMiB?: number;
}

export const formatRss = (r: RssFigures | undefined) => (r ? `RSS idle ${r.idleMiB ?? '?'} MiB, peak ${r.peakMiB ?? '?'} MiB` : 'RSS ?');
