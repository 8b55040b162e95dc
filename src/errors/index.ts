/**
 * One error model: services throw AppError with a stable snake_case code; the error handler renders it.
 * `expose` follows the status: 4xx messages are for the client, 5xx messages never leave the server (except
 * the few codes in CLIENT_FACING_5XX, whose message is written for the client).
 */
export class AppError extends Error {
  readonly expose: boolean;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status = 400,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
    this.expose = status < 500 || CLIENT_FACING_5XX.has(code);
  }
}

/** 5xx answers whose message is written for the client (an outside provider is down, not this server). */
const CLIENT_FACING_5XX: ReadonlySet<string> = new Set(['delivery_unavailable']);

/** The catalogue of error codes the JSON APIs answer with. */
export const errorCodes = [
  'invalid_request',
  'invalid_credentials',
  'invalid_token',
  'session_expired',
  'device_mismatch',
  'ip_mismatch',
  'too_many_attempts',
  'invalid_challenge',
  'challenge_expired',
  'challenge_consumed',
  'method_not_allowed',
  'password_reset_required',
  'invalid_code',
  'invalid_expiry',
  'invalid_reset_token',
  'weak_password',
  'invalid_client',
  'not_found',
  'conflict',
  'role_cycle',
  'unauthorized',
  'forbidden',
  'payload_too_large',
  'unsupported_media_type',
  'too_many_requests',
  'internal_error',
  'service_unavailable',
  'insufficient_scope',
  'invalid_scope',
  'reauthentication_required',
  'mfa_required',
  'delivery_unavailable',
] as const;
export type ErrorCode = (typeof errorCodes)[number];
