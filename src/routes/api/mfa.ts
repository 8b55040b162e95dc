/**
 * Second factors and trusted devices of the caller (JSON, documented at /docs/json).
 *
 * Every route needs the caller's first-party session (Bearer), except the enrolment routes of a login that
 * must enrol a factor before it completes: they take that login's `challenge_id` (and `device_id`) in the
 * body instead, and confirming the factor continues the login (the answer is then the login's next step
 * or its token pair).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import type { UserRow, UserService } from '../../services/users.js';
import type { LoginService } from '../../services/login/index.js';
import type { TrustedDeviceService } from '../../services/mfa/devices.js';
import type { FactorService, Reauthentication } from '../../services/mfa/factors.js';
import { challengeSchema, deviceIdSchema, errorSchema, noContent, tokenPairSchema } from './auth-schemas.js';

const tags = ['mfa'];
const bearer = [{ bearer: [] }];

const factorSchema = z.object({
  id: z.uuid(),
  type: z.enum(['totp', 'sms', 'email', 'recovery_code', 'webauthn']),
  label: z.string(),
  preferred: z.boolean(),
  active: z.boolean(),
  created_at: z.string(),
  confirmed_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  remaining: z.number().int().optional(),
});
const deviceSchema = z.object({
  id: z.uuid(),
  device_info: z.record(z.string(), z.string()),
  ip_address: z.string().nullable(),
  created_at: z.string(),
  last_seen_at: z.string(),
  trusted_until: z.string(),
});
const code = z.string().trim().min(1).max(64);
const idParams = z.object({ id: z.string().max(100) });
/** Enrolment during a login that requires it: the login's challenge stands in for the Bearer token. */
const duringLogin = { challenge_id: z.string().max(200).optional(), device_id: deviceIdSchema.optional() };
const codeChannel = z.enum(['sms', 'email']);
/**
 * Proof for adding a factor or regenerating recovery codes when the session's sign-in is not recent: the
 * current password, or a code from an active factor (`method` totp, sms, email or recovery_code).
 */
const reauthFields = { password: z.string().min(1).max(1024).optional(), method: z.enum(['totp', 'sms', 'email', 'recovery_code']).optional(), code: code.optional() };
const REAUTH_DESCRIPTION =
  ' With a session, allowed within RECENT_SIGN_IN_MAX_AGE of its sign-in (5 minutes by default); later, the body must also carry the current `password` or a `method` and `code` from an active factor (sms and email codes come from /api/auth/mfa/reauthenticate/): 403 `reauthentication_required` without, 401 `invalid_credentials` when wrong.';

export interface MfaRouteDeps {
  factors: FactorService;
  login: LoginService;
  users: UserService;
  mfaDevices: TrustedDeviceService;
}

export async function mfaRoutes(parent: FastifyInstance, deps: MfaRouteDeps): Promise<void> {
  const app = parent.withTypeProvider<ZodTypeProvider>();
  const { factors, login, users, mfaDevices } = deps;
  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

  /** The signed-in user of a first-party session (personal tokens are read-only and cannot change factors). */
  async function sessionUser(request: FastifyRequest, readOnly = false): Promise<UserRow> {
    const p = request.principal;
    const allowed = p?.via === 'first-party-session' || (readOnly && p?.via === 'personal-token');
    if (!p?.userId || !allowed) throw new AppError('forbidden', 'this needs a first-party session (sign in with /api/auth/login/)', 403);
    const user = await users.findUserById(p.userId);
    if (!user) throw new AppError('invalid_token', 'the account no longer exists', 401);
    return user;
  }

  /** Bearer authentication, unless the body names a login waiting for enrolment (and no Authorization header is sent). */
  async function authenticateUnlessEnrolling(request: FastifyRequest, reply: FastifyReply) {
    const body = request.body as { challenge_id?: unknown } | undefined;
    if (!request.headers.authorization && typeof body?.challenge_id === 'string') return;
    await app.authenticate(request, reply);
  }

  type ReauthBody = { password?: string | undefined; method?: 'totp' | 'sms' | 'email' | 'recovery_code' | undefined; code?: string | undefined };
  const reauthOf = (body: ReauthBody | null | undefined): Reauthentication | undefined =>
    body?.password !== undefined ? { password: body.password } : body?.method && body.code !== undefined ? { method: body.method, code: body.code } : undefined;

  /** The signed-in user, after the recent-sign-in or re-authentication check for adding a factor. */
  async function addingUser(request: FastifyRequest, body: ReauthBody | null | undefined, action: 'add_factor' | 'recovery_codes' = 'add_factor'): Promise<UserRow> {
    const user = await sessionUser(request);
    await factors.assertMayAddFactor(user, { firstPartySessionId: request.principal?.sessionId }, reauthOf(body), action, request.requestContext);
    return user;
  }

  /**
   * A session's user (starting an enrolment: see addingUser; confirming one the session started: no further
   * check), or the user of a login waiting for enrolment (its challenge proves the sign-in).
   */
  async function enrollingUser(request: FastifyRequest, body: ({ challenge_id?: string | undefined; device_id?: string | undefined } & ReauthBody) | null | undefined, starting = true): Promise<UserRow> {
    if (request.principal) return starting ? addingUser(request, body) : sessionUser(request);
    return login.enrollingUser({ channel: 'api', challengeId: body?.challenge_id ?? '', deviceId: body?.device_id }, request.requestContext);
  }

  app.get(
    '/api/auth/mfa/',
    { preHandler: app.authenticate, schema: { tags, security: bearer, summary: 'The caller\'s factors (never their secrets)', response: { 200: z.object({ items: z.array(factorSchema) }) } } },
    async (request, reply) => {
      const user = await sessionUser(request, true);
      return noStore(reply).send({ items: await factors.list(user.id) });
    },
  );

  app.post(
    '/api/auth/mfa/totp/',
    {
      preHandler: authenticateUnlessEnrolling,
      schema: {
        tags,
        security: bearer,
        summary: 'Start enrolling an authenticator app (TOTP)',
        description: `Answers the secret, its otpauth:// URI and a QR code (SVG data URI). The factor counts only after /confirm/ with a code from the app.${REAUTH_DESCRIPTION}`,
        body: z.object({ ...duringLogin, ...reauthFields }).nullish(),
        response: { 201: z.object({ factor_id: z.uuid(), secret: z.string(), otpauth_uri: z.string(), qr_code: z.string() }), 400: errorSchema, 401: errorSchema, 403: errorSchema },
      },
    },
    async (request, reply) => {
      const user = await enrollingUser(request, request.body);
      return noStore(reply).code(201).send(await factors.enrollTotp(user, request.requestContext));
    },
  );

  app.post(
    '/api/auth/mfa/sms/',
    {
      preHandler: authenticateUnlessEnrolling,
      schema: {
        tags,
        security: bearer,
        summary: 'Start enrolling a phone for SMS codes',
        description: `Sends a code to the phone (E.164); the factor counts only after /confirm/ with it. Sends are rate limited per user and per number (429 with Retry-After).${REAUTH_DESCRIPTION}`,
        body: z.object({ phone: z.string().max(32), ...duringLogin, ...reauthFields }),
        response: { 201: z.object({ factor_id: z.uuid() }), 400: errorSchema, 401: errorSchema, 403: errorSchema, 409: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const user = await enrollingUser(request, request.body);
      return noStore(reply).code(201).send(await factors.enrollCodeFactor(user, 'sms', request.body.phone, request.requestContext));
    },
  );

  app.post(
    '/api/auth/mfa/email/',
    {
      preHandler: authenticateUnlessEnrolling,
      schema: {
        tags,
        security: bearer,
        summary: 'Start enrolling an address for email codes (default: the account\'s)',
        description: REAUTH_DESCRIPTION.trim(),
        body: z.object({ email: z.string().max(254).optional(), ...duringLogin, ...reauthFields }).nullish(),
        response: { 201: z.object({ factor_id: z.uuid() }), 400: errorSchema, 401: errorSchema, 403: errorSchema, 409: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const email = request.body?.email === undefined ? undefined : z.email({ message: 'email: must be an email address' }).parse(request.body.email.trim());
      const user = await enrollingUser(request, request.body);
      return noStore(reply).code(201).send(await factors.enrollCodeFactor(user, 'email', email, request.requestContext));
    },
  );

  app.post(
    '/api/auth/mfa/:type/:id/confirm/',
    {
      preHandler: authenticateUnlessEnrolling,
      schema: {
        tags,
        security: bearer,
        summary: 'Activate a factor with a code from it',
        description:
          'Wrong code: 401 `invalid_code` (SMS and email: with `attempts_left`, 5 at most). During a login that required enrolment (`challenge_id`), the answer is the login\'s next step or its token pair.',
        params: z.object({ type: z.enum(['totp', 'sms', 'email']), id: z.string().max(100) }),
        body: z.object({ code, ...duringLogin }),
        response: { 200: z.union([factorSchema, tokenPairSchema, challengeSchema]), 400: errorSchema, 401: errorSchema, 404: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const user = await enrollingUser(request, request.body, false);
      const factor = await factors.confirm(user, request.params.type, request.params.id, request.body.code, request.requestContext);
      if (request.principal) return noStore(reply).send(factor);
      return noStore(reply).send(await login.completeEnrollment({ channel: 'api', challengeId: request.body.challenge_id ?? '', deviceId: request.body.device_id }, factor.type, request.requestContext));
    },
  );

  app.post(
    '/api/auth/mfa/recovery-codes/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Create 10 single-use recovery codes (shown only in this answer); the previous set stops working',
        description: REAUTH_DESCRIPTION.trim(),
        body: z.object(reauthFields).nullish(),
        response: { 201: z.object({ codes: z.array(z.string()) }), 401: errorSchema, 403: errorSchema },
      },
    },
    async (request, reply) => {
      const user = await addingUser(request, request.body, 'recovery_codes');
      return noStore(reply).code(201).send({ codes: await factors.generateRecoveryCodes(user, request.requestContext) });
    },
  );

  app.post(
    '/api/auth/mfa/reauthenticate/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Send a code to the caller\'s SMS or email factor, to re-authenticate a factor removal',
        body: z.object({ method: codeChannel }),
        response: { 202: z.object({ expires_in: z.number().int() }), 400: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const user = await sessionUser(request);
      const sent = await factors.sendReauthCode(user, request.body.method, request.requestContext);
      return noStore(reply).code(202).send({ expires_in: sent.expiresIn });
    },
  );

  app.put(
    '/api/auth/mfa/:id/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Make a factor the preferred one (used first at sign-in)',
        params: idParams,
        body: z.object({ preferred: z.literal(true) }),
        response: { 200: factorSchema, 400: errorSchema, 404: errorSchema },
      },
    },
    async (request, reply) => {
      const user = await sessionUser(request);
      return noStore(reply).send(await factors.setPreferred(user, request.params.id, request.requestContext));
    },
  );

  app.delete(
    '/api/auth/mfa/:id/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Remove a factor, after re-authentication with the password or a code',
        description: 'Body `{password}` or `{method, code}` (method totp, sms, email or recovery_code; sms and email codes come from /api/auth/mfa/reauthenticate/). Failed re-authentication: 401 `invalid_credentials`. Another user\'s factor id answers 404.',
        params: idParams,
        body: z.union([z.object({ password: z.string().min(1).max(1024) }).strict(), z.object({ method: z.enum(['totp', 'sms', 'email', 'recovery_code']), code }).strict()]),
        response: { 204: noContent, 401: errorSchema, 404: errorSchema },
      },
    },
    async (request, reply) => {
      const user = await sessionUser(request);
      await factors.remove(user, request.params.id, request.body, request.requestContext);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/auth/devices/',
    { preHandler: app.authenticate, schema: { tags, security: bearer, summary: 'The caller\'s trusted devices (verified at a sign-in), most recently seen first', response: { 200: z.object({ items: z.array(deviceSchema) }) } } },
    async (request, reply) => {
      const user = await sessionUser(request, true);
      return noStore(reply).send({ items: await mfaDevices.list(user.id) });
    },
  );

  app.delete(
    '/api/auth/devices/:id/',
    {
      preHandler: app.authenticate,
      schema: { tags, security: bearer, summary: 'Stop trusting a device (its next sign-in is verified again)', params: idParams, response: { 204: noContent, 404: errorSchema } },
    },
    async (request, reply) => {
      const user = await sessionUser(request);
      await mfaDevices.distrust(user.id, request.params.id, request.requestContext);
      return reply.code(204).send(null);
    },
  );
}
