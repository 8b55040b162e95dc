/**
 * Personal API tokens in the account pages: the list, creating one (name, lifetime, API scopes; its value
 * shown once, on the page answering the POST, never on a page a GET could show again), renaming,
 * deactivating and deleting one (both through a confirmation page). The same session-service calls as
 * `POST/PUT/DELETE /api/auth/tokens/`; creating needs a recent sign-in, as there.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { durationInWords } from '../../lib/duration.js';
import { AppError } from '../../errors/index.js';
import { pageLinks } from '../../lib/pagination.js';
import { API_SCOPES } from '../../services/api-scopes.js';
import type { ActiveAccountSession } from '../../services/account/session.js';
import { BUILTIN_PERMISSIONS } from '../../services/rbac/service.js';
import type { SessionService } from '../../services/sessions.js';
import { seeOther } from '../../views/page.js';
import type { AccountContext } from './context.js';
import { tokenModel } from './token-view.js';

export interface TokenPageDeps {
  context: AccountContext;
  sessions: Pick<SessionService, 'listTokens' | 'findToken' | 'createPersonalToken' | 'updateToken' | 'deleteToken'>;
  /** PERSONAL_TOKEN_TTL and PERSONAL_TOKEN_MAX_TTL, in seconds. */
  personalTokenTtl: number;
  personalTokenMaxTtl: number;
}

const PAGE_SIZE = 50;
const DAY = 86_400;
/** The lifetimes offered, in days; only those within PERSONAL_TOKEN_MAX_TTL are shown. */
const LIFETIME_DAYS = [7, 30, 90, 180, 365];

const idParams = z.object({ id: z.string().max(100) });
const listQuery = z.object({ cursor: z.string().max(200).optional().catch(undefined), done: z.enum(['renamed', 'deactivated', 'deleted']).optional().catch(undefined) });
const csrfForm = z.object({ csrf: z.string().max(100) });
const nameField = z.string().trim().min(1).max(100);
const createForm = csrfForm.extend({
  name: z.string().max(200),
  expires_in_days: z.string().max(10),
  // One checkbox sends a string, several an array.
  scopes: z.union([z.string().max(100), z.array(z.string().max(100)).max(API_SCOPES.length)]).optional(),
});
const renameForm = csrfForm.extend({ name: z.string().max(200) });

const DONE_NOTICE = { renamed: 'The token was renamed.', deactivated: 'The token was deactivated. It no longer works.', deleted: 'The token was deleted. It no longer works.' } as const;

export async function accountTokenRoutes(app: FastifyInstance, deps: TokenPageDeps): Promise<void> {
  const { context, sessions } = deps;
  const signedIn = { config: { page: true }, preHandler: context.requireSession };
  const recentlySignedIn = { config: { page: true }, preHandler: [context.requireSession, context.requireRecentSignIn] };

  const lifetimes = LIFETIME_DAYS.filter((days) => days * DAY <= deps.personalTokenMaxTtl);
  const defaultDays = [...lifetimes].reverse().find((days) => days * DAY <= deps.personalTokenTtl) ?? lifetimes[0];
  const scopeChoices = API_SCOPES.map((scope) => ({ scope, description: BUILTIN_PERMISSIONS[scope] }));

  /** A personal token of the signed-in user; another user's (or a session's) id answers 404. */
  async function personalToken(session: ActiveAccountSession, id: string) {
    const token = await sessions.findToken(session.userId, id, undefined);
    if (token?.kind !== 'personal') throw new AppError('not_found', 'no such token', 404);
    return token;
  }

  function sendCreateForm(reply: FastifyReply, session: ActiveAccountSession, status: number, values: { name?: string; days?: number; scopes?: string[]; error?: string }) {
    return context.send(reply, session, status, 'token-new', {
      title: 'Create a personal token',
      current: '/account/tokens',
      lifetimes: lifetimes.map((days) => ({ days, label: durationInWords(days * DAY), selected: days === (values.days ?? defaultDays) })),
      scopes: scopeChoices.map((choice) => ({ ...choice, checked: values.scopes?.includes(choice.scope) ?? false })),
      name: values.name ?? '',
      error: values.error,
    });
  }

  app.get('/account/tokens', signedIn, async (request, reply) => {
    const session = request.account!;
    const query = listQuery.parse(request.query);
    const page = await sessions.listTokens(session.userId, undefined, { limit: PAGE_SIZE, cursor: query.cursor, kinds: ['personal'] });
    return context.send(reply, session, 200, 'tokens', {
      title: 'Personal tokens',
      current: '/account/tokens',
      notice: query.done ? DONE_NOTICE[query.done] : undefined,
      tokens: page.items.map((token) => tokenModel(token)),
      next: pageLinks('/account/tokens', {}, page, undefined).next,
    });
  });

  app.get('/account/tokens/new', recentlySignedIn, async (request, reply) => sendCreateForm(reply, request.account!, 200, {}));

  app.post('/account/tokens', recentlySignedIn, async (request, reply) => {
    const session = request.account!;
    const form = createForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const scopes = form.data.scopes === undefined ? [] : [form.data.scopes].flat();
    const days = Number(form.data.expires_in_days);
    const name = nameField.safeParse(form.data.name);
    if (!name.success) return sendCreateForm(reply, session, 400, { name: form.data.name, days, scopes, error: 'Give the token a name (at most 100 characters).' });
    if (!lifetimes.includes(days)) return sendCreateForm(reply, session, 400, { name: name.data, scopes, error: 'Choose one of the lifetimes offered.' });
    const created = await sessions.createPersonalToken(
      { userId: session.userId, signIn: { providerSignIn: { at: new Date(session.authTime * 1000), amr: session.amr } } },
      { name: name.data, expiresIn: days * DAY, scopes },
      request.requestContext,
    );
    // The value exists only in this answer (the page module sends no-store): never redirect to a page showing it.
    return context.send(reply, session, 201, 'token-created', { title: 'Your new token', current: '/account/tokens', token: tokenModel(created), value: created.token });
  });

  app.get('/account/tokens/:id', signedIn, async (request, reply) => {
    const session = request.account!;
    const token = await personalToken(session, idParams.parse(request.params).id);
    return context.send(reply, session, 200, 'token', { title: `Token ${token.name ?? ''}`, current: '/account/tokens', token: tokenModel(token) });
  });

  app.post('/account/tokens/:id/rename', signedIn, async (request, reply) => {
    const session = request.account!;
    const form = renameForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const token = await personalToken(session, idParams.parse(request.params).id);
    const name = nameField.safeParse(form.data.name);
    if (!name.success) {
      return context.send(reply, session, 400, 'token', { title: `Token ${token.name ?? ''}`, current: '/account/tokens', token: tokenModel(token), error: 'Give the token a name (at most 100 characters).' });
    }
    await sessions.updateToken(session.userId, token.id, { name: name.data }, undefined, request.requestContext);
    return seeOther(reply, '/account/tokens?done=renamed');
  });

  // Deactivating and deleting: a confirmation page (GET), then the change (POST).
  for (const action of ['deactivate', 'delete'] as const) {
    app.get(`/account/tokens/:id/${action}`, signedIn, async (request, reply) => {
      const session = request.account!;
      const token = await personalToken(session, idParams.parse(request.params).id);
      return context.send(reply, session, 200, 'token-confirm', { title: `${action === 'delete' ? 'Delete' : 'Deactivate'} token`, current: '/account/tokens', action, token: tokenModel(token) });
    });

    app.post(`/account/tokens/:id/${action}`, signedIn, async (request, reply) => {
      const session = request.account!;
      const form = csrfForm.safeParse(request.body);
      if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
      const token = await personalToken(session, idParams.parse(request.params).id);
      if (action === 'delete') await sessions.deleteToken(session.userId, token.id, request.requestContext);
      else if (token.is_active) await sessions.updateToken(session.userId, token.id, { isActive: false }, undefined, request.requestContext);
      return seeOther(reply, `/account/tokens?done=${action === 'delete' ? 'deleted' : 'deactivated'}`);
    });
  }
}
