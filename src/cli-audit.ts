/**
 * `keryu audit ...`: export the audit log, seal it, verify it (in the database, or an exported file offline
 * with the public keys), and print those keys. Part of the `keryu` command (cli.ts), kept in its own file.
 */
import { EventEmitter, once } from 'node:events';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { auditExportFormats, type AuditExportFormat } from './services/audit-log.js';
import type { VerifyResult } from './services/audit-seal/service.js';
import { verifyExport, type ExportVerifyResult } from './services/audit-seal/verify-export.js';
import type { Services } from './services/container.js';

export interface AuditCommandContext {
  json: boolean;
  out(human: string, data: unknown): void;
  io: { stdout: { write(s: string): unknown } };
  open(): Promise<Services>;
  usage(message: string): Error;
}

function describeVerification(result: VerifyResult | ExportVerifyResult, checked: string): string {
  if (result.problem) return `audit log NOT intact: ${result.problem.message}`;
  const last = result.last ? `\nnewest seal #${result.last.id}, digest ${result.last.digest} (keep it outside the database; pass it as --expect-digest next time)` : '\nno seals yet';
  return `audit log intact: ${checked}${result.unsealed ? `, ${result.unsealed} newer row(s) not sealed yet` : ''}${last}`;
}

export async function runAuditCommand(sub: string | undefined, args: string[], ctx: AuditCommandContext): Promise<number> {
  const actor = { audit: { type: 'cli' as const } };
  switch (sub) {
    case 'export': {
      const { values } = parseArgs({
        args,
        options: {
          from: { type: 'string' },
          to: { type: 'string' },
          type: { type: 'string', multiple: true },
          outcome: { type: 'string' },
          'actor-id': { type: 'string' },
          'subject-id': { type: 'string' },
          'client-id': { type: 'string' },
          ip: { type: 'string' },
          format: { type: 'string', default: 'ndjson' },
        },
        strict: true,
      });
      const format = values.format as AuditExportFormat;
      if (!auditExportFormats.includes(format)) throw ctx.usage(`--format: one of ${auditExportFormats.join(', ')}`);
      if (values.outcome !== undefined && values.outcome !== 'success' && values.outcome !== 'failure') throw ctx.usage('--outcome: success or failure');
      const s = await ctx.open();
      const lines = await s.auditLog.exportEvents(
        {
          from: values.from,
          to: values.to,
          type: values.type,
          outcome: values.outcome,
          actor_id: values['actor-id'],
          subject_id: values['subject-id'],
          client_id: values['client-id'],
          ip: values.ip,
        },
        format,
        actor,
      );
      for await (const line of lines) {
        // Waits for a slow pipe to drain, so a large export never piles up in memory.
        if (ctx.io.stdout.write(line) === false && ctx.io.stdout instanceof EventEmitter) await once(ctx.io.stdout, 'drain');
      }
      return 0;
    }
    case 'seal': {
      parseArgs({ args, options: {}, strict: true });
      const s = await ctx.open();
      const result = await s.auditSeals.sealPending();
      const sealed = result.seals.reduce((n, seal) => n + seal.count, 0);
      const human = !result.ran
        ? 'another replica is sealing; nothing done'
        : `${result.seals.length} seal(s) over ${sealed} row(s)${result.seals.map((seal) => `\nseal #${seal.id} digest ${seal.digest}`).join('')}`;
      ctx.out(result.broken ? `${human}\nWARNING: ${result.broken.message}` : human, result);
      return result.broken ? 1 : 0;
    }
    case 'verify': {
      const { values } = parseArgs({
        args,
        options: { from: { type: 'string' }, 'expect-digest': { type: 'string' }, export: { type: 'string' }, jwks: { type: 'string' } },
        strict: true,
      });
      const expectDigest = values['expect-digest'];
      if (expectDigest !== undefined && !/^[0-9a-f]{64}$/.test(expectDigest)) throw ctx.usage('--expect-digest: a seal digest (64 hex characters)');
      if (values.export !== undefined) {
        if (values.from !== undefined) throw ctx.usage('--from applies to the database, not to --export');
        if (values.jwks === undefined) throw ctx.usage('--export needs --jwks FILE: the public keys from GET /api/auth/audit/keys/ (or "keryu audit keys"), kept beforehand');
        const jwks = JSON.parse(await readFile(values.jwks, 'utf8')) as { keys: Array<Record<string, unknown>> };
        if (!Array.isArray(jwks.keys)) throw ctx.usage('--jwks: not a JWKS document ({"keys": [...]})');
        const lines = createInterface({ input: createReadStream(values.export, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
        const result = await verifyExport(lines, jwks, { expectDigest });
        ctx.out(describeVerification(result, `${result.events} event(s), ${result.seals} seal(s) checked`), result);
        return result.ok ? 0 : 1;
      }
      if (values.jwks !== undefined) throw ctx.usage('--jwks applies to --export');
      const from = values.from === undefined ? undefined : Number(values.from);
      if (from !== undefined && (!Number.isInteger(from) || from < 1)) throw ctx.usage('--from: a seal number (1, 2, ...)');
      const s = await ctx.open();
      const result = await s.auditSeals.verifyChain({ fromSeal: from, expectDigest, actor: 'cli' });
      ctx.out(describeVerification(result, `${result.seals} seal(s), ${result.rows} row(s) checked`), result);
      return result.ok ? 0 : 1;
    }
    case 'keys': {
      parseArgs({ args, options: {}, strict: true });
      const s = await ctx.open();
      const jwks = await s.auditSeals.publicJwks();
      ctx.out(JSON.stringify(jwks, null, 2), jwks);
      return 0;
    }
    default:
      throw ctx.usage(`unknown audit command: ${sub ?? '(none)'}`);
  }
}
