/**
 * The first-party auth API (JSON, documented at /docs/json): login and its further step, refresh,
 * logout, the caller's sessions and tokens, personal API tokens, password reset and change, and the
 * caller's own activity. Handlers validate, call one service, shape the answer; the rules live in the
 * services.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { deviceCookieHeader, DEVICE_COOKIE, readCookie } from '../../lib/device-cookie.js';
import { mapPage, pageQuerySchema, pageSchema } from '../../lib/pagination.js';
import type { ActivityRow, ActivityService } from '../../services/activity.js';
import type { LoginService } from '../../services/login/index.js';
import type { PasswordManagementService } from '../../services/password-management.js';
import type { SessionService } from '../../services/sessions.js';
import { challengeSchema, deviceIdSchema as deviceId, deviceNameSchema, errorSchema, noContent, tokenPairSchema } from './auth-schemas.js';

export interface AuthRouteDeps {
  login: LoginService;
  sessions: SessionService;
  passwordManagement: PasswordManagementService;
  /** The caller's own security events (the only part of the audit log this API reads). */
  activity: ActivityService;
  secureCookies: boolean;
}

const deviceInfoSchema = z.object({
  device_id: z.string().optional(),
  device_name: z.string().optional(),
  user_agent: z.string().optional(),
  browser: z.string().optional(),
  os: z.string().optional(),
  device: z.string().optional(),
});
const tokenSchema = z.object({
  id: z.uuid(),
  kind: z.enum(['session', 'personal', 'oidc_session', 'oidc_grant']),
  name: z.string().nullable(),
  device_info: deviceInfoSchema,
  ip_address: z.string().nullable(),
  scopes: z.array(z.string()),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  is_active: z.boolean(),
  current: z.boolean(),
});
const activitySchema = z.object({
  id: z.uuid(),
  type: z.string(),
  outcome: z.enum(['success', 'failure']),
  occurred_at: z.string(),
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  client_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
/** An activity row as this API answers it (snake_case, times in RFC 3339). */
const activityView = (row: ActivityRow): z.infer<typeof activitySchema> => ({
  id: row.id,
  type: row.type,
  outcome: row.outcome,
  occurred_at: row.occurredAt.toISOString(),
  ip_address: row.ip,
  user_agent: row.userAgent,
  client_id: row.clientId,
  details: row.details,
});
const idParams = z.object({ id: z.string().max(100) });
const scopeName = z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 : . _ -');

const tags = ['auth'];
const bearer = [{ bearer: [] }];

export async function authRoutes(parent: FastifyInstance, deps: AuthRouteDeps): Promise<void> {
  const app = parent.withTypeProvider<ZodTypeProvider>();
  const { login, sessions, passwordManagement } = deps;

  /** Only principals of this API (first-party sessions, personal tokens) use it; with `session`, only a session. */
  const principalOf = (request: FastifyRequest, session = false) => {
    const p = request.principal;
    const allowed = session ? p?.via === 'first-party-session' : p?.via === 'first-party-session' || p?.via === 'personal-token';
    if (!p?.userId || !allowed) {
      throw new AppError('forbidden', session ? 'this needs a first-party session (sign in with /api/auth/login/)' : 'this needs a first-party session or personal token', 403);
    }
    return { userId: p.userId, sessionId: p.sessionId };
  };

  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

  app.post(
    '/api/auth/login/',
    {
      schema: {
        tags,
        summary: 'Sign in with email and password',
        description:
          'Returns a token pair (with `device_token` when the app sent no valid one: send it on later logins, it is what makes the device known and trusted; `device_id` is only a label), or `mfa_required` with a challenge (`reason`: mfa, new_device, new_ip or enroll; `methods`) to complete at /api/auth/verify/. Wrong email or password: 401 `invalid_credentials`, the same whether or not the account exists. Too many failures: 429 `too_many_attempts` with Retry-After. An account reported compromised: 403 `password_reset_required` (only with the right password).',
        body: z.object({ email: z.string().max(320), password: z.string().max(1024), device_id: deviceId.optional(), device_name: deviceNameSchema.optional(), device_token: z.string().max(200).optional() }),
        response: { 200: z.union([tokenPairSchema, challengeSchema]), 401: errorSchema, 403: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const { email, password, device_id, device_name, device_token } = request.body;
      const { answer: result, deviceCookie } = await login.start(
        { email, password, deviceId: device_id, deviceName: device_name, deviceToken: device_token, deviceCookie: readCookie(request.headers.cookie, DEVICE_COOKIE) },
        { channel: 'api' },
        request.requestContext,
      );
      if (deviceCookie) reply.header('set-cookie', deviceCookieHeader(deviceCookie, deps.secureCookies));
      return noStore(reply).send(result);
    },
  );

  app.post(
    '/api/auth/verify/',
    {
      schema: {
        tags,
        summary: 'Pass the current step of a sign-in (a code from a factor, or sent by SMS or email)',
        description:
          'Answers the token pair after the last step, or the next step (the same challenge_id with a new `reason` and `methods`). A challenge works only with the `device_id` its login was started with (another one → 400 `device_mismatch`); from another IP address it works too (audited; refused with SESSION_IP_BINDING=strict). Failures: unknown challenge → 400 `invalid_challenge`; expired → 400 `challenge_expired`; already completed → 400 `challenge_consumed`; a method the step does not offer → 400 `method_not_allowed`; wrong code → 401 `invalid_code` with `attempts_left`; after 5 wrong codes → 429 `too_many_attempts` (sign in again).',
        body: z.object({ challenge_id: z.string().max(200), method: z.string().max(50), code: z.string().max(200), device_id: deviceId.optional() }),
        response: { 200: z.union([tokenPairSchema, challengeSchema]), 400: errorSchema, 401: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const { challenge_id, method, code, device_id } = request.body;
      return noStore(reply).send(await login.verify({ channel: 'api', challengeId: challenge_id, deviceId: device_id }, method, code, request.requestContext));
    },
  );

  app.post(
    '/api/auth/verify/resend/',
    {
      schema: {
        tags,
        summary: 'Send another code for the current step of a sign-in',
        description: 'Sends are limited per user and per destination (OTP_RESEND_INTERVAL apart, OTP_SENDS_PER_HOUR an hour): 429 `too_many_requests` with Retry-After. The first code of a method in a sign-in is not a resend and skips the interval.',
        body: z.object({ challenge_id: z.string().max(200), method: z.string().max(50), device_id: deviceId.optional() }),
        response: { 202: z.object({ method: z.string(), destination: z.string(), expires_in: z.number().int() }), 400: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const { challenge_id, method, device_id } = request.body;
      return noStore(reply).code(202).send(await login.resend({ channel: 'api', challengeId: challenge_id, deviceId: device_id }, method, request.requestContext));
    },
  );

  app.post(
    '/api/auth/refresh/',
    {
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new pair (rotation)',
        description:
          'The presented token is dead afterwards. Presented again by the same device within REFRESH_RETRY_WINDOW while its successor is unused, it gets back the same pair; otherwise the session is revoked (reuse). 401 `invalid_token`, `session_expired`, `device_mismatch` or `ip_mismatch`.',
        body: z.object({ refresh_token: z.string().max(512), device_id: deviceId.optional() }),
        response: { 200: tokenPairSchema, 401: errorSchema },
      },
    },
    async (request, reply) => {
      const pair = await sessions.refresh({ refreshToken: request.body.refresh_token, deviceId: request.body.device_id }, request.requestContext);
      return noStore(reply).send(pair);
    },
  );

  app.post(
    '/api/auth/logout/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'End this session (or, with all_sessions, every session of the user)',
        body: z.object({ all_sessions: z.boolean().optional() }).nullish(),
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      await sessions.logout(principal, request.body?.all_sessions === true, request.requestContext);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/auth/tokens/',
    {
      preHandler: app.authenticate,
      schema: { tags, security: bearer, summary: 'The caller\'s sessions and tokens, newest first', querystring: pageQuerySchema, response: { 200: pageSchema(tokenSchema) } },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return noStore(reply).send(await sessions.listTokens(principal.userId, principal.sessionId, request.query));
    },
  );

  app.post(
    '/api/auth/tokens/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Create a personal API token (its value is shown only in this response)',
        description:
          'Only from a first-party session signed in within RECENT_SIGN_IN_MAX_AGE (else 403 `reauthentication_required`: sign in again). `scopes` are the Authorization API\'s scopes, named after the auth.* permissions (an unknown one: 400 `invalid_scope`); the token may use a permission only when a scope names it and its owner holds it then. "Log out all", a password change or reset and a "This wasn\'t me" report revoke personal tokens.',
        body: z.object({ name: z.string().trim().min(1).max(100), expires_in: z.number().int().positive().optional(), scopes: z.array(scopeName).max(50).optional() }),
        response: { 201: tokenSchema.extend({ token: z.string() }), 400: errorSchema, 403: errorSchema },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request, true);
      const created = await sessions.createPersonalToken(
        { userId: principal.userId, signIn: { firstPartySessionId: principal.sessionId } },
        { name: request.body.name, expiresIn: request.body.expires_in, scopes: request.body.scopes },
        request.requestContext,
      );
      return noStore(reply).code(201).send(created);
    },
  );

  app.put(
    '/api/auth/tokens/:id/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Rename or revoke (is_active: false) a token, or change a personal token\'s expiry',
        description: 'expires_at may not be later than the policy maximum counted from creation (400 `invalid_expiry`). A revoked token or session is never reactivated (is_active: true on it answers 409 `conflict`). Another user\'s token id answers 404.',
        params: idParams,
        body: z.object({ name: z.string().trim().min(1).max(100).optional(), is_active: z.boolean().optional(), expires_at: z.iso.datetime({ offset: true }).optional() }),
        response: { 200: tokenSchema, 400: errorSchema, 404: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request, true);
      const { name, is_active, expires_at } = request.body;
      const updated = await sessions.updateToken(
        principal.userId,
        request.params.id,
        { name, isActive: is_active, expiresAt: expires_at === undefined ? undefined : new Date(expires_at) },
        principal.sessionId,
        request.requestContext,
      );
      return noStore(reply).send(updated);
    },
  );

  app.delete(
    '/api/auth/tokens/:id/',
    {
      preHandler: app.authenticate,
      schema: { tags, security: bearer, summary: 'Revoke and delete a session or token', params: idParams, response: { 204: noContent, 404: errorSchema } },
    },
    async (request, reply) => {
      const principal = principalOf(request, true);
      await sessions.deleteToken(principal.userId, request.params.id, request.requestContext);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/auth/activity/',
    {
      preHandler: app.authenticate,
      schema: { tags, security: bearer, summary: 'The caller\'s own security events, newest first', querystring: pageQuerySchema, response: { 200: pageSchema(activitySchema) } },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      return noStore(reply).send(mapPage(await deps.activity.listUserActivity(principal.userId, request.query), activityView));
    },
  );

  app.post(
    '/api/auth/password/reset/',
    {
      schema: {
        tags,
        summary: 'Ask for a password reset link by email',
        description: 'Always 202, whether or not an account has this email and whether or not a link is sent (one per PASSWORD_RESET_RESEND_INTERVAL and at most PASSWORD_RESET_SENDS_PER_HOUR per hour per account).',
        body: z.object({ email: z.string().max(320) }),
      },
    },
    async (request, reply) => {
      passwordManagement.requestReset(request.body.email, request.requestContext);
      return reply.code(202).send();
    },
  );

  app.post(
    '/api/auth/password/reset/confirm/',
    {
      schema: {
        tags,
        summary: 'Set a new password with a reset link\'s token; every session is revoked',
        body: z.object({ token: z.string().max(200), new_password: z.string().max(1024) }),
        response: { 204: noContent, 400: errorSchema },
      },
    },
    async (request, reply) => {
      await passwordManagement.confirmReset(request.body.token, request.body.new_password, request.requestContext);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/auth/password/change/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Change the password; the other sessions are revoked',
        body: z.object({ current_password: z.string().max(1024), new_password: z.string().max(1024) }),
        response: { 204: noContent, 400: errorSchema, 401: errorSchema },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request, true);
      await passwordManagement.changePassword(principal, request.body.current_password, request.body.new_password, request.requestContext);
      return reply.code(204).send(null);
    },
  );
}
