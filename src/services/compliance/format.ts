/** The compliance report as a readable table (the CLI without --json). */
import type { ComplianceReport } from './service.js';

const MAX_EVIDENCE = 100;

function evidenceLine(evidence: Record<string, unknown>): string {
  const text = Object.entries(evidence)
    .filter(([, v]) => !(Array.isArray(v) && v.length === 0) && v !== null)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return text.length > MAX_EVIDENCE ? `${text.slice(0, MAX_EVIDENCE - 3)}...` : text;
}

export function formatComplianceReport(report: ComplianceReport): string {
  const rows = report.checks.map((c) => [
    c.status.toUpperCase(),
    c.id,
    [c.references.rfc9700 && `RFC 9700 ${c.references.rfc9700}`, c.references.nist_800_63b && `800-63B ${c.references.nist_800_63b}`, c.references.asvs_5_0 && `ASVS ${c.references.asvs_5_0}`]
      .filter(Boolean)
      .join('; '),
    evidenceLine(c.evidence),
  ]);
  const header = ['STATUS', 'CHECK', 'REFERENCES', 'EVIDENCE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [
    line(header),
    ...rows.map(line),
    '',
    `${report.summary.pass} pass, ${report.summary.warn} warn, ${report.summary.fail} fail (${report.generated_at}); --json for the evidence in full`,
  ].join('\n');
}
