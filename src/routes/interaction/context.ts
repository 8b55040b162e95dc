/**
 * The interaction a browser is in, as the route files see it: loading it (the expired page when it is gone
 * or belongs to another uid), the CSRF token bound to it, the guard of every step POST, and finishing it
 * with a result for the provider (303, so the browser follows with GET: RFC 9700 §4.12).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors } from 'oidc-provider';
import { z } from 'zod';
import type { ProviderHost } from '../../oidc/provider-host.js';
import type { AuditService } from '../../services/audit.js';
import type { LoginService } from '../../services/login/index.js';
import type { FactorService } from '../../services/mfa/factors.js';
import type { PasskeyService } from '../../services/passkeys/service.js';
import type { FormCsrf } from '../../views/csrf.js';
import { seeOther, sendPage } from '../../views/page.js';
import { expiredView, refusedView, type InteractionPageContext } from './views.js';

export interface InteractionRouteDeps {
  host: ProviderHost;
  login: LoginService;
  factors: FactorService;
  /** Registration of a passkey enrolled at sign-in. */
  passkeys: Pick<PasskeyService, 'registrationOptions' | 'verifyRegistration'>;
  audit: AuditService;
  csrf: FormCsrf;
  secureCookies: boolean;
}

export type Details = Awaited<ReturnType<ProviderHost['provider']['interactionDetails']>>;

const uidParams = z.object({ uid: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });

export interface InteractionContext {
  deps: InteractionRouteDeps;
  /** The uid and CSRF token the pages of this interaction carry. */
  pageOf(details: Details): InteractionPageContext;
  csrfValid(details: Details, token: unknown): boolean;
  /** Loads the interaction this browser is in, or answers with the expired page. */
  load(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined>;
  /** A POST's interaction with a valid CSRF token (refused page otherwise), or undefined when a page was sent. */
  loadForm(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined>;
  /** The guard of every step POST: `loadForm`, and a login still to be done. */
  loadStepForm(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined>;
  clientName(details: Details): Promise<string>;
  /** Writes the provider's interaction result and answers 303 to where the provider continues. */
  finish(request: FastifyRequest, reply: FastifyReply, result: Record<string, unknown>, merge: boolean): Promise<FastifyReply>;
  /** 303 back to a page of this interaction (the next step, or the same one after a code was sent). */
  seeOther(reply: FastifyReply, details: Details, query?: Record<string, string>): FastifyReply;
}

export function createInteractionContext(deps: InteractionRouteDeps): InteractionContext {
  const csrfValid = (details: Details, token: unknown) => deps.csrf.verify('interaction', details.uid, token);

  async function load(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined> {
    const params = uidParams.safeParse(request.params);
    if (!params.success) {
      await sendPage(reply, expiredView());
      return undefined;
    }
    try {
      const details = await deps.host.provider.interactionDetails(request.raw, reply.raw);
      if (details.uid !== params.data.uid) {
        await sendPage(reply, expiredView());
        return undefined;
      }
      return details;
    } catch (err) {
      if (err instanceof errors.SessionNotFound || (err as { name?: string }).name === 'SessionNotFound') {
        await sendPage(reply, expiredView());
        return undefined;
      }
      throw err;
    }
  }

  async function loadForm(request: FastifyRequest, reply: FastifyReply): Promise<Details | undefined> {
    const details = await load(request, reply);
    if (!details) return undefined;
    // Checked before the rest of the body is looked at.
    if (!csrfValid(details, (request.body as { csrf?: unknown } | undefined)?.csrf)) {
      await sendPage(reply, refusedView());
      return undefined;
    }
    return details;
  }

  return {
    deps,
    pageOf: (details) => ({ uid: details.uid, csrf: deps.csrf.issue('interaction', details.uid) }),
    csrfValid,
    load,
    loadForm,
    async loadStepForm(request, reply) {
      const details = await loadForm(request, reply);
      if (!details) return undefined;
      if (details.prompt.name !== 'login') {
        await sendPage(reply, expiredView());
        return undefined;
      }
      return details;
    },
    async clientName(details) {
      const clientId = String(details.params.client_id ?? '');
      const client = await deps.host.provider.Client.find(clientId);
      return client?.clientName ?? clientId;
    },
    async finish(request, reply, result, merge) {
      const location = await deps.host.provider.interactionResult(request.raw, reply.raw, result, { mergeWithLastSubmission: merge });
      return seeOther(reply, location);
    },
    seeOther(reply, details, query = {}) {
      const search = new URLSearchParams(query).toString();
      return seeOther(reply, `/interaction/${details.uid}${search ? `?${search}` : ''}`);
    },
  };
}
