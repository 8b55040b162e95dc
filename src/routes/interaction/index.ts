/**
 * The login and consent interaction that oidc-provider redirects browsers to. Pages are server-rendered
 * and work without JavaScript; every form carries a CSRF token bound to the interaction; POSTs answer 303.
 * Wrong credentials show one generic message whether or not the account exists. Password attempts go
 * through the same brute-force protection as the JSON API (per identifier, per known device, per IP).
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from 'oidc-provider';
import { z } from 'zod';
import { constantTimeEqual, hmacDigest } from '../../lib/crypto.js';
import type { ProviderHost } from '../../oidc/provider-host.js';
import { AppError } from '../../errors/index.js';
import { deviceCookieHeader, DEVICE_COOKIE, readCookie } from '../../lib/device-cookie.js';
import type { AuditService } from '../../services/audit.js';
import type { LoginService } from '../../services/login.js';
import { pageSecurityHeaders, renderPage } from '../../views/render.js';

export interface InteractionRouteDeps {
  host: ProviderHost;
  login: LoginService;
  audit: AuditService;
  csrfKey: Buffer;
  secureCookies: boolean;
}

const uidParams = z.object({ uid: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });
const loginBody = z.object({ csrf: z.string().max(100), email: z.string().max(320), password: z.string().max(1024) });
const csrfBody = z.object({ csrf: z.string().max(100) });

const GENERIC_LOGIN_ERROR = 'The email or password is incorrect.';

type Details = Awaited<ReturnType<ProviderHost['provider']['interactionDetails']>>;

export async function interactionRoutes(app: FastifyInstance, deps: InteractionRouteDeps): Promise<void> {
  // Forms are tiny; anything larger is not a login.
  await app.register(formbody, { bodyLimit: 8 * 1024 });

  const csrfFor = (uid: string) => hmacDigest(deps.csrfKey, `interaction:${uid}`);
  const csrfValid = (uid: string, token: string) => constantTimeEqual(csrfFor(uid), token);

  function sendPage(reply: FastifyReply, status: number, template: string, model: { title: string; [k: string]: unknown }) {
    return reply.code(status).headers(pageSecurityHeaders).type('text/html; charset=utf-8').send(renderPage(template, model));
  }

  function expiredPage(reply: FastifyReply) {
    return sendPage(reply, 400, 'message', {
      title: 'Sign-in expired',
      heading: 'This sign-in has expired',
      lines: ['Go back to the application and start again.'],
    });
  }

  /** Loads the interaction this browser is in, or answers with the expired page. */
  async function load(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined> {
    const params = uidParams.safeParse(request.params);
    if (!params.success) {
      await expiredPage(reply);
      return undefined;
    }
    try {
      const details = await deps.host.provider.interactionDetails(request.raw, reply.raw);
      if (details.uid !== params.data.uid) {
        await expiredPage(reply);
        return undefined;
      }
      return details;
    } catch (err) {
      if (err instanceof errors.SessionNotFound || (err as { name?: string }).name === 'SessionNotFound') {
        await expiredPage(reply);
        return undefined;
      }
      throw err;
    }
  }

  async function clientName(details: Details): Promise<string> {
    const clientId = String(details.params.client_id ?? '');
    const client = await deps.host.provider.Client.find(clientId);
    return client?.clientName ?? clientId;
  }

  function loginPage(reply: FastifyReply, details: Details, name: string, status = 200, error?: string, email?: string) {
    return sendPage(reply, status, 'login', {
      title: 'Sign in',
      clientName: name,
      action: `/interaction/${details.uid}/login`,
      abortAction: `/interaction/${details.uid}/abort`,
      csrf: csrfFor(details.uid),
      error,
      email,
    });
  }

  async function finish(request: FastifyRequest, reply: FastifyReply, result: Record<string, unknown>, merge: boolean) {
    const location = await deps.host.provider.interactionResult(request.raw, reply.raw, result, { mergeWithLastSubmission: merge });
    // 303: the browser must follow with GET, never re-POST the credentials (RFC 9700 §4.12).
    return reply.code(303).header('cache-control', 'no-store').redirect(location, 303);
  }

  const context = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'], requestId: request.id });

  app.get('/interaction/:uid', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    const name = await clientName(details);
    if (details.prompt.name === 'login') return loginPage(reply, details, name);
    if (details.prompt.name === 'consent') {
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
      const scopes = [
        ...(missing.missingOIDCScope ?? []),
        ...Object.values(missing.missingResourceScopes ?? {}).flat(),
      ];
      return sendPage(reply, 200, 'consent', {
        title: 'Allow access',
        clientName: name,
        scopes: scopes.length ? scopes : ['sign you in'],
        action: `/interaction/${details.uid}/confirm`,
        abortAction: `/interaction/${details.uid}/abort`,
        csrf: csrfFor(details.uid),
      });
    }
    return expiredPage(reply);
  });

  app.post('/interaction/:uid/login', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    const body = loginBody.safeParse(request.body);
    const name = await clientName(details);
    if (!body.success || !csrfValid(details.uid, body.data.csrf)) {
      return sendPage(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Go back and try again.'] });
    }
    if (details.prompt.name !== 'login') return expiredPage(reply);

    const { email, password } = body.data;
    const clientId = String(details.params.client_id ?? '');
    let checked: Awaited<ReturnType<LoginService['checkPassword']>>;
    try {
      checked = await deps.login.checkPassword(
        { email, password, deviceCookie: readCookie(request.headers.cookie, DEVICE_COOKIE) },
        { ...context(request), clientId, channel: 'form' },
      );
    } catch (err) {
      if (err instanceof AppError && err.code === 'too_many_attempts') {
        const wait = Number(err.extra.retry_after ?? 60);
        reply.header('retry-after', String(wait));
        return loginPage(reply, details, name, 429, `Too many failed attempts. Try again in ${wait} seconds.`, email);
      }
      if (err instanceof AppError && err.code === 'invalid_credentials') return loginPage(reply, details, name, 401, GENERIC_LOGIN_ERROR, email);
      throw err;
    }
    const { user, deviceCookie } = checked;
    if (deviceCookie) reply.header('set-cookie', deviceCookieHeader(deviceCookie, deps.secureCookies));
    await deps.audit.record({
      type: 'login',
      outcome: 'success',
      actor: { type: 'user', id: user.id },
      subject: { type: 'user', id: user.id },
      clientId,
      context: context(request),
      details: { method: 'pwd', channel: 'form' },
    });
    return finish(request, reply, { login: { accountId: user.id, amr: ['pwd'] } }, false);
  });

  app.post('/interaction/:uid/confirm', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    const body = csrfBody.safeParse(request.body);
    if (!body.success || !csrfValid(details.uid, body.data.csrf) || details.prompt.name !== 'consent' || !details.session) {
      return sendPage(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Go back and try again.'] });
    }
    const provider = deps.host.provider;
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: String(details.params.client_id) });
    if (!grant) return expiredPage(reply);
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await deps.audit.record({
      type: 'consent',
      outcome: 'success',
      actor: { type: 'user', id: details.session.accountId },
      subject: { type: 'user', id: details.session.accountId },
      clientId: String(details.params.client_id),
      context: context(request),
      details: { scopes: missing.missingOIDCScope ?? [], resources: Object.keys(missing.missingResourceScopes ?? {}) },
    });
    return finish(request, reply, { consent: { grantId } }, true);
  });

  app.post('/interaction/:uid/abort', async (request, reply) => {
    const details = await load(request, reply);
    if (!details) return reply;
    const body = csrfBody.safeParse(request.body);
    if (!body.success || !csrfValid(details.uid, body.data.csrf)) {
      return sendPage(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Go back and try again.'] });
    }
    return finish(request, reply, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
  });
}
