/**
 * The blast radius of an authorization change in words, from its dry run: how many users gain and lose
 * each permission ("12 users gain documents.delete, 3 lose billing.view") and whose level moves. What an
 * administrator reads before confirming a change; the same dry run the API answers with ?dry_run=true.
 */
import type { DryRun } from './write-path.js';

export interface BlastRadius {
  /** Users affected in any way. */
  users: number;
  /** Per permission, how many users gain it; most first, then by codename. */
  gains: Array<{ permission: string; users: number }>;
  losses: Array<{ permission: string; users: number }>;
  /** Users whose level changes. */
  levelChanges: number;
  /** One sentence: "12 users gain documents.delete, 3 lose billing.view." */
  summary: string;
}

const usersWord = (n: number) => `${n} ${n === 1 ? 'user' : 'users'}`;
const agree = (verb: string, n: number) => (n === 1 ? `${verb}s` : verb);

function tally(changes: DryRun['changes'], pick: (c: DryRun['changes'][number]) => string[]) {
  const counts = new Map<string, number>();
  for (const change of changes) for (const p of pick(change)) counts.set(p, (counts.get(p) ?? 0) + 1);
  return [...counts].map(([permission, users]) => ({ permission, users })).sort((a, b) => b.users - a.users || a.permission.localeCompare(b.permission));
}

export function blastRadius(dryRun: DryRun): BlastRadius {
  const gains = tally(dryRun.changes, (c) => c.gained);
  const losses = tally(dryRun.changes, (c) => c.lost);
  const levelChanges = dryRun.changes.filter((c) => c.levelBefore !== c.levelAfter).length;
  // The first clause names "users"; the others continue the sentence ("3 lose billing.view").
  const clauses = [
    ...gains.map((g) => ({ n: g.users, verb: 'gain', what: g.permission })),
    ...losses.map((l) => ({ n: l.users, verb: 'lose', what: l.permission })),
  ].map((c, i) => `${i === 0 ? usersWord(c.n) : c.n} ${agree(c.verb, c.n)} ${c.what}`);
  if (levelChanges) clauses.push(`${usersWord(levelChanges)} ${agree('change', levelChanges)} level`);
  const summary = clauses.length ? `${clauses.join(', ')}.` : 'No user gains or loses anything.';
  return { users: dryRun.changes.length, gains, losses, levelChanges, summary };
}
