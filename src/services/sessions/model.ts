/**
 * What the session modules share: token prefixes, the service's configuration and dependencies, the shapes
 * they answer with, and the token list's view of a row.
 */
import type { Db } from '../../db/client.js';
import type { DeviceInfo } from '../../lib/device.js';
import type { TokenDigest } from '../../lib/crypto.js';
import type { AuthTokenRow } from '../../queries/auth-tokens.js';
import type { Clock } from '../../lib/clock.js';
import type { AccessTokenIssuer } from '../access-tokens.js';
import type { AuditEvent, AuditService } from '../audit.js';
import type { Mailer } from '../notify/mailer.js';
import type { RecentSignIn } from '../recent-sign-in.js';

export const REFRESH_TOKEN_PREFIX = 'krt_';
export const PERSONAL_TOKEN_PREFIX = 'kpat_';
/** last_used_at (and the IP of use) is written at most once per this many seconds per token. */
export const TOUCH_INTERVAL_SECONDS = 60;

export interface TokenPair {
  token_type: 'Bearer';
  access_token: string;
  expires_in: number;
  refresh_token: string;
  session_id: string;
}

export interface SessionServiceConfig {
  accessTokenTtl: number;
  idleTtl: number;
  absoluteTtl: number;
  retryWindow: number;
  ipBinding: 'off' | 'strict';
  personalTokenTtl: number;
  personalTokenMaxTtl: number;
  /** How long a revoked OIDC grant's tombstone is kept. */
  tombstoneTtl: number;
}

export interface SessionServiceDeps {
  db: Db;
  clock: Clock;
  config: SessionServiceConfig;
  audit: AuditService;
  mailer: Mailer;
  accessTokens: () => AccessTokenIssuer;
  retryKey: Buffer;
  /** Digests of refresh and personal tokens at rest (keyed, with the legacy fallback). */
  tokenDigest: TokenDigest;
  /** The recent-sign-in rule (services/recent-sign-in.ts). */
  recentSignIn: RecentSignIn;
  log: { error(obj: object, msg: string): void };
}

export interface SessionPrincipal {
  userId: string;
  sessionId: string;
  kind: 'session' | 'personal';
  scopes: string[];
  /** How the user signed in (RFC 8176), for rules such as a role's `mfa_required`; empty when not recorded. */
  amr: string[];
}

export interface TokenView {
  id: string;
  kind: AuthTokenRow['kind'];
  name: string | null;
  device_info: DeviceInfo;
  ip_address: string | null;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  is_active: boolean;
  current: boolean;
}

/** When a session or token stops working: the earlier of its absolute and idle ends (null: never). */
export function effectiveExpiry(row: Pick<AuthTokenRow, 'expiresAt' | 'idleExpiresAt'>): Date | null {
  if (row.expiresAt && row.idleExpiresAt) return row.expiresAt < row.idleExpiresAt ? row.expiresAt : row.idleExpiresAt;
  return row.expiresAt ?? row.idleExpiresAt;
}

export function tokenView(row: AuthTokenRow, now: Date, currentId: string | undefined): TokenView {
  const expiresAt = effectiveExpiry(row);
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    device_info: row.deviceInfo,
    ip_address: row.ipAddress,
    scopes: row.scopes,
    created_at: row.createdAt.toISOString(),
    expires_at: expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    is_active: row.isActive && (!expiresAt || expiresAt > now),
    current: row.id === currentId,
  };
}

/** Records an audit event without making the caller wait or fail: a lost event is logged. */
export function auditRecorder(deps: Pick<SessionServiceDeps, 'audit' | 'log'>) {
  return (event: AuditEvent) => {
    deps.audit.record(event).catch((err: unknown) => deps.log.error({ err, type: event.type }, 'audit event lost'));
  };
}
export type AuditRecorder = ReturnType<typeof auditRecorder>;
