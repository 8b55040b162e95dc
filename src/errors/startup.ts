/**
 * Start-up failures an operator causes and fixes (a setting, a secret, an unreachable or unmigrated
 * database): one line naming the cause and the setting, never a stack trace or a library's bare message.
 */
import { isDatabaseUnavailable } from './unavailable.js';

/** A failure whose message is already written for the operator. */
export class OperatorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OperatorError';
  }
}

export const FOREIGN_SECRET_MESSAGE = 'the signing keys in the database were encrypted with another KERYU_SECRET; use the one every replica shares';

/** Where DATABASE_URL points, without its credentials. */
function databaseAddress(databaseUrl: string | undefined): string {
  if (!databaseUrl) return 'the embedded database (DATA_DIR)';
  try {
    const url = new URL(databaseUrl);
    return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

function codesOf(err: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

/** One line for the operator: the cause and the setting to fix when it is one we know, else the error chain. */
export function explainStartupError(err: unknown, settings: { databaseUrl?: string | undefined }): string {
  if (err instanceof OperatorError) return err.message;
  const codes = codesOf(err);
  const at = databaseAddress(settings.databaseUrl);
  // SQLSTATE 28P01 invalid_password, 28000 invalid_authorization_specification.
  if (codes.includes('28P01') || codes.includes('28000')) return `the database at ${at} refused the user or password in DATABASE_URL`;
  // 3D000 invalid_catalog_name.
  if (codes.includes('3D000')) return `the database named in DATABASE_URL (${at}) does not exist: create it, or fix DATABASE_URL`;
  if (isDatabaseUnavailable(err)) return `cannot reach the database at ${at} (${codes[0] ?? 'unavailable'}): check DATABASE_URL and that PostgreSQL is running`;
  // 42P01 undefined_table: the schema was never migrated.
  if (codes.includes('42P01')) return 'the database schema is missing: run "keryu migrate" or start with MIGRATE_ON_START=true';
  const messages: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) messages.push(e.message.trim().replace(/\s+/g, ' '));
  return messages.length ? messages.join('; caused by: ') : String(err);
}
