/**
 * Passkeys in the JSON API (documented at /docs/json): registering one (a first-party session, or a login
 * waiting for enrolment), signing in with one (passwordless, or as the second factor of a pending login),
 * and the caller's list, rename and remove. Each ceremony is two calls: `options/` answers the options for
 * the platform's WebAuthn API (its challenge stored server-side, single use, 5 minutes, bound to the session,
 * login or device that asked), the second call sends the authenticator's response.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { DEVICE_COOKIE, deviceCookieHeader, readCookie } from '../../lib/device-cookie.js';
import type { LoginService } from '../../services/login/index.js';
import type { FactorService, Reauthentication } from '../../services/mfa/factors.js';
import { PASSKEY_METHOD } from '../../services/passkeys/method.js';
import { authenticationResponseSchema, registrationResponseSchema } from '../../services/passkeys/responses.js';
import type { PasskeyBinding, PasskeyService } from '../../services/passkeys/service.js';
import type { UserRow, UserService } from '../../services/users.js';
import { challengeSchema, deviceIdSchema, deviceNameSchema, errorSchema, noContent, tokenPairSchema } from './auth-schemas.js';

const tags = ['passkeys'];
const bearer = [{ bearer: [] }];

const passkeySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  backup_eligible: z.boolean(),
  backed_up: z.boolean(),
  transports: z.array(z.string()),
  aaguid: z.string(),
});
/** The options for navigator.credentials.create()/get(), as @simplewebauthn/server makes them (passed through). */
const optionsSchema = z.object({ challenge: z.string() }).loose();
/** A passkey's name: the same rule as a device name (it is quoted in security emails). */
const passkeyName = deviceNameSchema;
const code = z.string().trim().min(1).max(64);
const reauthFields = { password: z.string().min(1).max(1024).optional(), method: z.enum(['totp', 'sms', 'email', 'recovery_code']).optional(), code: code.optional() };
const duringLogin = { challenge_id: z.string().max(200).optional(), device_id: deviceIdSchema.optional() };
const idParams = z.object({ id: z.string().max(100) });

export interface PasskeyRouteDeps {
  passkeys: PasskeyService;
  factors: FactorService;
  login: LoginService;
  users: UserService;
  secureCookies: boolean;
}

export async function passkeyRoutes(parent: FastifyInstance, deps: PasskeyRouteDeps): Promise<void> {
  const app = parent.withTypeProvider<ZodTypeProvider>();
  const { passkeys, factors, login, users } = deps;
  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

  /** The signed-in user of a first-party session (personal tokens may only read). */
  async function sessionUser(request: FastifyRequest, readOnly = false): Promise<{ user: UserRow; sessionId: string | undefined }> {
    const p = request.principal;
    const allowed = p?.via === 'first-party-session' || (readOnly && p?.via === 'personal-token');
    if (!p?.userId || !allowed) throw new AppError('forbidden', 'this needs a first-party session (sign in with /api/auth/login/)', 403);
    const user = await users.findUserById(p.userId);
    if (!user) throw new AppError('invalid_token', 'the account no longer exists', 401);
    return { user, sessionId: p.sessionId };
  }

  /** Bearer authentication, unless the body names a login waiting for enrolment (and no Authorization header is sent). */
  async function authenticateUnlessEnrolling(request: FastifyRequest, reply: FastifyReply) {
    const body = request.body as { challenge_id?: unknown } | undefined;
    if (!request.headers.authorization && typeof body?.challenge_id === 'string') return;
    await app.authenticate(request, reply);
  }

  type ReauthBody = { password?: string | undefined; method?: Extract<Reauthentication, { method: string }>['method'] | undefined; code?: string | undefined };
  const reauthOf = (body: ReauthBody | null | undefined): Reauthentication | undefined =>
    body?.password !== undefined ? { password: body.password } : body?.method && body.code !== undefined ? { method: body.method, code: body.code } : undefined;

  /** A session's binding: its challenge is good only for the session that asked. */
  const sessionBinding = (sessionId: string | undefined): PasskeyBinding => {
    if (!sessionId) throw new AppError('forbidden', 'this needs a first-party session (sign in with /api/auth/login/)', 403);
    return { kind: 'session', id: sessionId };
  };

  app.post(
    '/api/auth/mfa/webauthn/options/',
    {
      preHandler: authenticateUnlessEnrolling,
      schema: {
        tags,
        security: bearer,
        summary: 'Start registering a passkey: options for navigator.credentials.create()',
        description:
          'With a first-party session: allowed within RECENT_SIGN_IN_MAX_AGE of its sign-in, else the body must carry the current `password` or a `method` and `code` (403 `reauthentication_required` without, 401 `invalid_credentials` when wrong). During a login that must enrol a factor: `challenge_id` (and its `device_id`) instead of the Bearer token. The options\' challenge works once, for 5 minutes, for this session or login only.',
        body: z.object({ ...duringLogin, ...reauthFields }).nullish(),
        response: { 200: optionsSchema, 400: errorSchema, 401: errorSchema, 403: errorSchema },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (!request.principal) {
        const { user, binding } = await login.passkeyEnrolment({ channel: 'api', challengeId: body?.challenge_id ?? '', deviceId: body?.device_id }, request.requestContext);
        return noStore(reply).send(await passkeys.registrationOptions(user, binding));
      }
      const { user, sessionId } = await sessionUser(request);
      await factors.assertMayAddFactor(user, { firstPartySessionId: sessionId }, reauthOf(body), 'add_factor', request.requestContext);
      return noStore(reply).send(await passkeys.registrationOptions(user, sessionBinding(sessionId)));
    },
  );

  app.post(
    '/api/auth/mfa/webauthn/',
    {
      preHandler: authenticateUnlessEnrolling,
      schema: {
        tags,
        security: bearer,
        summary: 'Register a passkey with the authenticator\'s response (attestation none)',
        description:
          '`response` is the PublicKeyCredential as JSON (@simplewebauthn/browser startRegistration). Answers the passkey (201); during a login that required enrolment (`challenge_id`), the login\'s next step or its token pair (200). A response for another session\'s or user\'s options, a used or expired challenge, or one that does not verify: 400 `invalid_request`; a passkey already registered: 409.',
        body: z.object({ response: registrationResponseSchema, name: passkeyName.optional(), ...duringLogin }),
        response: { 200: z.union([tokenPairSchema, challengeSchema]), 201: passkeySchema, 400: errorSchema, 401: errorSchema, 403: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => {
      const { response, name, challenge_id, device_id } = request.body;
      if (!request.principal) {
        const ref = { channel: 'api' as const, challengeId: challenge_id ?? '', deviceId: device_id };
        const { user, binding } = await login.passkeyEnrolment(ref, request.requestContext);
        const registered = await passkeys.verifyRegistration(user, binding, response, name, request.requestContext);
        return noStore(reply).send(await login.completeEnrollment(ref, PASSKEY_METHOD, request.requestContext, registered.amr));
      }
      const { user, sessionId } = await sessionUser(request);
      const registered = await passkeys.verifyRegistration(user, sessionBinding(sessionId), response, name, request.requestContext);
      return noStore(reply).code(201).send(registered.passkey);
    },
  );

  app.get(
    '/api/auth/mfa/webauthn/',
    { preHandler: app.authenticate, schema: { tags, security: bearer, summary: 'The caller\'s passkeys (never their keys)', response: { 200: z.object({ items: z.array(passkeySchema) }) } } },
    async (request, reply) => {
      const { user } = await sessionUser(request, true);
      return noStore(reply).send({ items: await passkeys.list(user.id) });
    },
  );

  app.put(
    '/api/auth/mfa/webauthn/:id/',
    {
      preHandler: app.authenticate,
      schema: { tags, security: bearer, summary: 'Rename a passkey', description: 'Another user\'s passkey id answers 404.', params: idParams, body: z.object({ name: passkeyName }), response: { 200: passkeySchema, 400: errorSchema, 404: errorSchema } },
    },
    async (request, reply) => {
      const { user } = await sessionUser(request);
      return noStore(reply).send(await passkeys.rename(user, request.params.id, request.body.name, request.requestContext));
    },
  );

  app.delete(
    '/api/auth/mfa/webauthn/:id/',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security: bearer,
        summary: 'Remove a passkey, after re-authentication with the password or a code',
        description: 'Body `{password}` or `{method, code}`, as for removing any factor. Failed re-authentication: 401 `invalid_credentials`. Another user\'s passkey id answers 404 and removes nothing.',
        params: idParams,
        body: z.union([z.object({ password: z.string().min(1).max(1024) }).strict(), z.object({ method: z.enum(['totp', 'sms', 'email', 'recovery_code']), code }).strict()]),
        response: { 204: noContent, 401: errorSchema, 404: errorSchema },
      },
    },
    async (request, reply) => {
      const { user } = await sessionUser(request);
      const factorId = await passkeys.assertOwned(user.id, request.params.id);
      await factors.remove(user, factorId, request.body, request.requestContext);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/auth/login/webauthn/options/',
    {
      schema: {
        tags,
        summary: 'Options for signing in with a passkey: passwordless, or the second factor of a pending login',
        description:
          'Without `challenge_id`: a passwordless sign-in (discoverable credentials, user verification required), bound to this `device_id` (send the same one to /api/auth/login/webauthn/). With the `challenge_id` of a login whose current step offers `webauthn`: the user\'s passkeys are allowed, bound to that login.',
        body: z.object(duringLogin).nullish(),
        response: { 200: optionsSchema, 400: errorSchema },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body?.challenge_id !== undefined) return noStore(reply).send(await login.stepPasskeyOptions({ channel: 'api', challengeId: body.challenge_id, deviceId: body.device_id }, request.requestContext));
      return noStore(reply).send(await login.passwordlessOptions({ channel: 'api', deviceId: body?.device_id }));
    },
  );

  app.post(
    '/api/auth/login/webauthn/',
    {
      schema: {
        tags,
        summary: 'Sign in with a passkey (passwordless), or pass a pending login\'s step with one',
        description:
          '`response` is the PublicKeyCredential as JSON (@simplewebauthn/browser startAuthentication). Passwordless: answers the token pair (amr `hwk` or `swk`, `user`, `mfa`); the new-device and new-network rules, brute-force limits and audit apply as for a password sign-in. Failures: 401 `invalid_credentials` (unknown passkey, bad signature, user not verified, signature counter gone backwards), 400 `invalid_challenge`, `challenge_expired` or `challenge_consumed` for the options\' challenge, 429 `too_many_attempts`. With `challenge_id`: as /api/auth/verify/ with method `webauthn` (401 `invalid_code` with `attempts_left` when refused).',
        body: z.object({ response: authenticationResponseSchema, ...duringLogin, device_name: deviceNameSchema.optional(), device_token: z.string().max(200).optional() }),
        response: { 200: z.union([tokenPairSchema, challengeSchema]), 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      const { response, challenge_id, device_id, device_name, device_token } = request.body;
      if (challenge_id !== undefined) {
        return noStore(reply).send(await login.verify({ channel: 'api', challengeId: challenge_id, deviceId: device_id }, PASSKEY_METHOD, JSON.stringify(response), request.requestContext));
      }
      const { answer, deviceCookie } = await login.startWithPasskey(
        response,
        { channel: 'api', deviceId: device_id, deviceName: device_name, deviceToken: device_token, deviceCookie: readCookie(request.headers.cookie, DEVICE_COOKIE) },
        request.requestContext,
      );
      if (deviceCookie) reply.header('set-cookie', deviceCookieHeader(deviceCookie, deps.secureCookies));
      return noStore(reply).send(answer);
    },
  );
}
