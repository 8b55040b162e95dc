/**
 * One error model: services and plugins throw AppError with a stable snake_case code; one error handler
 * (plugins/error-handler.ts) renders it in the shape the route answers in. Each code has its HTTP status in
 * the catalogue below, so a thrower names the code and not the status (it may override the status where one
 * code serves two situations). `expose` follows the status: 4xx messages are for the client, 5xx messages
 * never leave the server (except the few codes in CLIENT_FACING_5XX, whose message is written for the client).
 */

/**
 * The catalogue of error codes the service answers with, each with its default HTTP status.
 * `method_not_allowed` defaults to 400: services use it for a sign-in method this login may not use; the
 * HTTP 405 answer (which must name the allowed methods, RFC 9110 §15.5.6) sets its status and `Allow` itself.
 */
export const errorStatuses = {
  invalid_request: 400,
  invalid_credentials: 401,
  invalid_token: 401,
  session_expired: 401,
  device_mismatch: 401,
  ip_mismatch: 401,
  too_many_attempts: 429,
  invalid_challenge: 400,
  challenge_expired: 400,
  challenge_consumed: 400,
  method_not_allowed: 400,
  password_reset_required: 403,
  invalid_code: 401,
  invalid_expiry: 400,
  invalid_reset_token: 400,
  weak_password: 400,
  invalid_client: 401,
  not_found: 404,
  conflict: 409,
  role_cycle: 409,
  unauthorized: 401,
  forbidden: 403,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  internal_error: 500,
  service_unavailable: 503,
  insufficient_scope: 403,
  invalid_scope: 400,
  reauthentication_required: 403,
  mfa_required: 403,
  delivery_unavailable: 503,
} as const satisfies Record<string, number>;
export type ErrorCode = keyof typeof errorStatuses;
export const errorCodes = Object.keys(errorStatuses) as ErrorCode[];

/** 5xx answers whose message is written for the client (an outside provider is down, not this server). */
const CLIENT_FACING_5XX: ReadonlySet<ErrorCode> = new Set(['delivery_unavailable']);

export interface AppErrorOptions {
  /** Overrides the catalogue's status, where one code serves two situations. */
  status?: number | undefined;
  /** More fields of the answer (`retry_after`, `attempts_left`, `required`, ...); sent only when exposed. */
  extra?: Record<string, unknown> | undefined;
  /** Headers the answer needs whatever its shape (`WWW-Authenticate`, `Allow`); sent only when exposed. */
  headers?: Record<string, string> | undefined;
}

export class AppError extends Error {
  readonly expose: boolean;
  readonly status: number;
  readonly extra: Record<string, unknown>;
  readonly headers: Readonly<Record<string, string>>;
  constructor(code: ErrorCode, message: string, options?: AppErrorOptions);
  /** The positional form: an explicit status (overriding the catalogue's) and extra fields. */
  constructor(code: ErrorCode, message: string, status?: number, extra?: Record<string, unknown>);
  constructor(
    readonly code: ErrorCode,
    message: string,
    statusOrOptions?: number | AppErrorOptions,
    extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
    const options: AppErrorOptions = typeof statusOrOptions === 'object' ? statusOrOptions : { status: statusOrOptions, extra };
    this.status = options.status ?? errorStatuses[code];
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
    this.expose = this.status < 500 || CLIENT_FACING_5XX.has(code);
  }
}
