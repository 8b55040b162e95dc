/** Reads a V8 .cpuprofile (node --cpu-prof): where the on-CPU time went, by function and by package. */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionTime {
  function: string;
  location: string;
  category: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  byCategory: Array<{ category: string; ms: number; pct: number }>;
  topSelf: FunctionTime[];
  /** Inclusive (self + callees, synchronous part only) time of the project's own functions. */
  topInclusiveProject: FunctionTime[];
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function categoryOf(frame: CallFrame, root: string): string {
  if (SPECIAL.has(frame.functionName) && !frame.url) return frame.functionName;
  const url = frame.url;
  if (!url) return '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? 'node_modules');
  }
  if (path.startsWith(root)) return `project ${path.slice(root.length).split('/').slice(0, 2).join('/')}`;
  return 'other';
}

function locationOf(frame: CallFrame, root: string): string {
  if (!frame.url) return '';
  let path = frame.url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) path = path.slice(nm + '/node_modules/'.length);
  else if (path.startsWith(root)) path = path.slice(root.length);
  return `${path}:${frame.lineNumber + 1}`;
}

/**
 * `window`: only the samples taken between `fromEndMs` and `toEndMs` before the profile ended (a profile runs from
 * start-up to exit; the caller knows when its load ran relative to the process's exit, start-up excluded).
 */
export function summarizeProfile(profile: CpuProfile, projectRoot: string, top = 30, window?: { fromEndMs: number; toEndMs: number }): ProfileSummary {
  const root = projectRoot.endsWith('/') ? projectRoot : `${projectRoot}/`;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyOf = (f: CallFrame) => `${f.functionName || '(anonymous)'}\u0000${locationOf(f, root)}`;

  const self = new Map<string, { frame: CallFrame; us: number }>();
  const inclusive = new Map<string, { frame: CallFrame; us: number }>();
  const categories = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;

  const windowUs = window && { from: profile.endTime - window.fromEndMs * 1000, to: profile.endTime - window.toEndMs * 1000 };
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (windowUs && (at < windowUs.from || at > windowUs.to)) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node || us <= 0) continue;
    totalUs += us;
    if (node.callFrame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const key = keyOf(node.callFrame);
    const s = self.get(key) ?? { frame: node.callFrame, us: 0 };
    s.us += us;
    self.set(key, s);
    const cat = categoryOf(node.callFrame, root);
    categories.set(cat, (categories.get(cat) ?? 0) + us);

    // Inclusive: every distinct project function on the stack gets the sample once.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      if (!frame.url.includes(`${root}src/`) && !frame.url.startsWith(`file://${root}src/`)) continue;
      const k = keyOf(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      const e = inclusive.get(k) ?? { frame, us: 0 };
      e.us += us;
      inclusive.set(k, e);
    }
  }

  const busyUs = Math.max(totalUs - idleUs, 1);
  const toRow = ({ frame, us }: { frame: CallFrame; us: number }): FunctionTime => ({
    function: frame.functionName || '(anonymous)',
    location: locationOf(frame, root),
    category: categoryOf(frame, root),
    ms: +(us / 1000).toFixed(1),
    pct: +((100 * us) / busyUs).toFixed(2),
  });
  return {
    totalMs: +(totalUs / 1000).toFixed(0),
    idleMs: +(idleUs / 1000).toFixed(0),
    busyMs: +(busyUs / 1000).toFixed(0),
    byCategory: [...categories]
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: +(us / 1000).toFixed(0), pct: +((100 * us) / busyUs).toFixed(2) })),
    topSelf: [...self.values()].sort((a, b) => b.us - a.us).slice(0, top).map(toRow),
    topInclusiveProject: [...inclusive.values()].sort((a, b) => b.us - a.us).slice(0, top).map(toRow),
  };
}

export function formatProfileSummary(file: string, s: ProfileSummary, top = 25): string {
  const lines = [
    `CPU profile ${file}`,
    `  sampled ${(s.totalMs / 1000).toFixed(1)} s, idle ${(s.idleMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(1)} s (percentages are of busy time)`,
    '',
    '  self time by package:',
    ...s.byCategory.slice(0, 20).map((c) => `    ${c.pct.toFixed(1).padStart(5)} %  ${c.category}`),
    '',
    '  top functions by self time:',
    ...s.topSelf.slice(0, top).map((f) => `    ${f.pct.toFixed(1).padStart(5)} %  ${f.function}  ${f.location}`),
    '',
    '  project functions, inclusive (synchronous) time:',
    ...s.topInclusiveProject.slice(0, 15).map((f) => `    ${f.pct.toFixed(1).padStart(5)} %  ${f.function}  ${f.location}`),
  ];
  return lines.join('\n');
}

/** The main thread's profile of process `pid` (a tsx loader thread writes one of its own). */
export async function latestProfile(dir: string, since: number, pid: number | undefined): Promise<string | undefined> {
  const files = await readdir(dir).catch(() => [] as string[]);
  let best: { file: string; mtime: number } | undefined;
  for (const f of files.filter((f) => f.endsWith('.cpuprofile') && (pid === undefined || f.includes(`.${pid}.0.`)))) {
    const mtime = (await stat(join(dir, f))).mtimeMs;
    if (mtime >= since && (!best || mtime > best.mtime)) best = { file: join(dir, f), mtime };
  }
  return best?.file;
}
