/**
 * The client pages under /admin/clients (permission auth.clients.manage): the list, registering a client,
 * editing its redirect URIs, grant types and scopes, rotating its secret, the roles of its service account,
 * and deleting it after a page listing what goes with it. Every change goes through the client management
 * service the API uses (`/api/auth/clients/`): the same validation, audit events and no-escalation rules.
 *
 * A secret is shown once, on the page that answers the POST creating or rotating it (`Cache-Control:
 * no-store`, as every page), never on a page a GET could show again: a 303 to such a page would need the
 * secret kept somewhere between the two requests. Reloading that answer re-posts the form (the browser asks
 * first): a registration is then refused as a conflict, a rotation rotates again.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { durationInWords } from '../../lib/duration.js';
import { pageLinks } from '../../lib/pagination.js';
import type { ClientManagement, ManagedClient } from '../../services/clients/management.js';
import type { ClientUsage } from '../../services/clients/usage.js';
import type { RbacService } from '../../services/rbac/service.js';
import { dateView } from '../../views/date.js';
import { seeOther } from '../../views/page.js';
import type { AdminContext } from './context.js';
import { AUTH_METHOD_LABELS, clientFormSchema, fieldErrorOf, formChoices, formValuesOf, metadataOfForm, type ClientFormValues, type FieldError } from './clients-form.js';

export interface ClientPageDeps {
  context: AdminContext;
  clients: ClientManagement;
  usage: ClientUsage;
  rbac: Pick<RbacService, 'listRoles'>;
  /** Seconds a replaced secret keeps working (CLIENT_SECRET_GRACE_PERIOD), for the rotation page's copy. */
  secretGracePeriod: number;
}

const PAGE_SIZE = 50;
/** Roles offered in the service-account form: one page of the role list (more is a case for the API). */
const ROLE_CHOICES = 200;
const idParams = z.object({ id: z.string().max(200) });
const DONE = ['created', 'updated', 'deleted', 'role-given', 'role-removed'] as const;
const listQuery = z.object({ cursor: z.string().max(200).optional().catch(undefined), search: z.string().max(200).optional().catch(undefined), done: z.enum(DONE).optional().catch(undefined) });
const doneQuery = z.object({ done: z.enum(DONE).optional().catch(undefined) });
const csrfForm = z.object({ csrf: z.string().max(100) });
const roleForm = csrfForm.extend({ role: z.string().min(1).max(200) });

const NOTICES: Record<(typeof DONE)[number], string> = {
  created: 'The client was registered.',
  updated: 'The client was saved.',
  deleted: 'The client was deleted, with its grants and tokens.',
  'role-given': 'The role was given to the client.',
  'role-removed': 'The role was removed from the client.',
};

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;
const pathOf = (clientId: string) => `/admin/clients/${encodeURIComponent(clientId)}`;

function clientModel(client: ManagedClient) {
  const method = String(client.metadata.token_endpoint_auth_method ?? 'client_secret_basic');
  const grants = Array.isArray(client.metadata.grant_types) ? (client.metadata.grant_types as unknown[]).map(String) : [];
  return {
    id: client.clientId,
    name: typeof client.metadata.client_name === 'string' ? client.metadata.client_name : client.clientId,
    kind: AUTH_METHOD_LABELS[method as keyof typeof AUTH_METHOD_LABELS] ?? method,
    confidential: client.hasSecret,
    grantTypes: grants.join(', '),
    created: dateView(client.createdAt),
    previousSecretUntil: dateView(client.previousSecretExpiresAt),
  };
}

export async function adminClientRoutes(app: FastifyInstance, deps: ClientPageDeps): Promise<void> {
  const { context, clients } = deps;
  const page = { config: { page: true, adminPermission: 'auth.clients.manage' } } as const;

  /** The form's fields (its CSRF token was checked by the console's guard before this handler ran). */
  function formOf<T extends z.ZodType>(schema: T, request: FastifyRequest): z.infer<T> {
    const form = schema.safeParse(request.body);
    if (!form.success) throw new AppError('invalid_request', 'The form was not valid: reload the page and try again.');
    return form.data;
  }

  const errorsOf = (error: FieldError | undefined) => ({ errors: error?.field ? { [error.field]: error.message } : {}, error: error && !error.field ? error.message : undefined });

  function sendCreateForm(request: FastifyRequest, reply: FastifyReply, status: number, form: ClientFormValues, error?: FieldError) {
    return context.send(request, reply, status, 'client-new', { title: 'Register a client', current: '/admin/clients', form, choices: formChoices(form), ...errorsOf(error) });
  }

  async function sendClient(request: FastifyRequest, reply: FastifyReply, status: number, client: ManagedClient, extra: { form?: ClientFormValues; error?: FieldError | undefined; roleError?: string | undefined; notice?: string | undefined } = {}) {
    const form = extra.form ?? formValuesOf(client.metadata, client.clientId);
    const [roles, allRoles] = await Promise.all([clients.listClientRoles(client.clientId), deps.rbac.listRoles({ limit: ROLE_CHOICES })]);
    const held = new Set(roles.map((r) => r.roleId));
    return context.send(request, reply, status, 'client', {
      title: `Client ${clientModel(client).name}`,
      current: '/admin/clients',
      client: clientModel(client),
      form,
      choices: formChoices(form),
      ...errorsOf(extra.error),
      roles: roles.map((r) => ({ id: r.roleId, name: r.role, since: dateView(r.createdAt) })),
      assignable: allRoles.items.filter((r) => !held.has(r.id)).map((r) => r.name),
      roleError: extra.roleError,
      notice: extra.notice,
      auditHref: context.can(request, 'auth.audit.read') ? `/admin/audit?${new URLSearchParams({ client_id: client.clientId }).toString()}` : undefined,
    });
  }

  /** The page that shows a secret, once: the answer to the POST that generated it. */
  function sendSecret(request: FastifyRequest, reply: FastifyReply, status: number, client: ManagedClient, secret: string, copy: { title: string; heading: string; notice: string; graceText?: string | undefined }) {
    return context.send(request, reply, status, 'client-secret', { ...copy, current: '/admin/clients', clientId: client.clientId, secret });
  }

  app.get('/admin/clients', page, async (request, reply) => {
    const query = listQuery.parse(request.query);
    const search = query.search?.trim() || undefined;
    const result = await clients.listClients({ limit: PAGE_SIZE, cursor: query.cursor, search });
    const links = pageLinks('/admin/clients', { search }, result, query.cursor);
    return context.send(request, reply, 200, 'clients', {
      title: 'Clients',
      current: '/admin/clients',
      notice: query.done ? NOTICES[query.done] : undefined,
      search: search ?? '',
      clients: result.items.map(clientModel),
      firstHref: links.first,
      nextHref: links.next,
    });
  });

  app.get('/admin/clients/new', page, async (request, reply) => sendCreateForm(request, reply, 200, { ...formValuesOf({}), grant_types: ['authorization_code', 'refresh_token'] }));

  app.post('/admin/clients', page, async (request, reply) => {
    const form = formOf(clientFormSchema, request);
    const clientId = (form.client_id ?? '').trim();
    const method = form.token_endpoint_auth_method ?? 'client_secret_basic';
    const metadata = { client_id: clientId, token_endpoint_auth_method: method, ...metadataOfForm(form) };
    let created;
    try {
      created = await clients.createClient(metadata, context.actorOf(request));
    } catch (error) {
      const values: ClientFormValues = { ...formValuesOf(metadata, clientId), redirect_uris: form.redirect_uris ?? '' };
      return sendCreateForm(request, reply, 400, values, fieldErrorOf(error));
    }
    if (!created.clientSecret) return seeOther(reply, `${pathOf(created.client.clientId)}?done=created`);
    // The secret exists only in this answer: never a redirect to a page that could show it again.
    const name = clientModel(created.client).name;
    return sendSecret(request, reply, 201, created.client, created.clientSecret, { title: 'Client registered', heading: `Client ${name} registered`, notice: `The client "${created.client.clientId}" was registered.` });
  });

  app.get('/admin/clients/:id', page, async (request, reply) => {
    const client = await clients.getClient(idParams.parse(request.params).id);
    const { done } = doneQuery.parse(request.query);
    return sendClient(request, reply, 200, client, { notice: done ? NOTICES[done] : undefined });
  });

  app.post('/admin/clients/:id', page, async (request, reply) => {
    const form = formOf(clientFormSchema, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    // The form edits some fields of the whole document (PUT): the others stay as they are; response_types is
    // derived again from the grant types by the service.
    const { response_types: _derived, ...kept } = client.metadata;
    const metadata = Object.fromEntries(Object.entries({ ...kept, ...metadataOfForm(form) }).filter(([, value]) => value !== undefined));
    let updated;
    try {
      updated = await clients.updateClient(client.clientId, metadata, context.actorOf(request));
    } catch (error) {
      const values: ClientFormValues = { ...formValuesOf(metadata, client.clientId), redirect_uris: form.redirect_uris ?? '' };
      return sendClient(request, reply, 400, client, { form: values, error: fieldErrorOf(error) });
    }
    // The form does not change the authentication method, so no secret is generated here; if one were, it is shown once.
    if (updated.clientSecret) return sendSecret(request, reply, 200, updated.client, updated.clientSecret, { title: 'Client saved', heading: `New secret of ${clientModel(updated.client).name}`, notice: 'The client was saved and given a secret.' });
    return seeOther(reply, `${pathOf(client.clientId)}?done=updated`);
  });

  app.post('/admin/clients/:id/roles', page, async (request, reply) => {
    const form = formOf(roleForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    try {
      await clients.assignClientRole(client.clientId, form.role, context.actorOf(request));
    } catch (error) {
      // No escalation (403) or an unknown role (400): said on the client's page, next to the roles.
      if (!(error instanceof AppError) || (error.code !== 'forbidden' && error.code !== 'invalid_request')) throw error;
      return sendClient(request, reply, error.status, client, { roleError: error.message });
    }
    return seeOther(reply, `${pathOf(client.clientId)}?done=role-given`);
  });

  app.post('/admin/clients/:id/roles/remove', page, async (request, reply) => {
    const form = formOf(roleForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    try {
      await clients.unassignClientRole(client.clientId, form.role, context.actorOf(request));
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'forbidden') throw error;
      return sendClient(request, reply, error.status, client, { roleError: error.message });
    }
    return seeOther(reply, `${pathOf(client.clientId)}?done=role-removed`);
  });

  app.get('/admin/clients/:id/secret', page, async (request, reply) => {
    const client = await clients.getClient(idParams.parse(request.params).id);
    if (!client.hasSecret) throw new AppError('not_found', 'this client has no secret', 404);
    return context.send(request, reply, 200, 'client-rotate', { title: 'Rotate the secret', current: '/admin/clients', client: clientModel(client), grace: deps.secretGracePeriod > 0 ? durationInWords(deps.secretGracePeriod) : undefined });
  });

  app.post('/admin/clients/:id/secret', page, async (request, reply) => {
    formOf(csrfForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    const rotated = await clients.rotateClientSecret(client.clientId, context.actorOf(request));
    const until = dateView(rotated.previousSecretExpiresAt);
    return sendSecret(request, reply, 200, rotated.client, rotated.clientSecret, {
      title: 'Secret rotated',
      heading: `New secret of ${clientModel(rotated.client).name}`,
      notice: 'The secret was rotated.',
      graceText: until ? `The previous secret keeps working until ${until.text}, then it is refused.` : 'The previous secret no longer works.',
    });
  });

  app.get('/admin/clients/:id/delete', page, async (request, reply) => {
    const client = await clients.getClient(idParams.parse(request.params).id);
    const [usage, roles] = await Promise.all([deps.usage.countClientUsage(client.clientId), clients.listClientRoles(client.clientId)]);
    const consequences = [
      `${plural(usage.grants, 'grant')} that ${plural(usage.accounts, 'account')} gave it: revoked, so the account holders' sign-ins to it end`,
      `${plural(usage.tokens, 'stored token')} issued to it (refresh tokens, opaque access tokens, codes): deleted at once`,
      'its JWT access tokens: refused by introspection at once; a resource server that checks them offline accepts them until they expire',
      roles.length ? `the roles of its service account: ${roles.map((r) => r.role).join(', ')}` : 'no role of a service account (it holds none)',
      'its registration: its secret and redirect URIs stop working on every server',
    ];
    return context.send(request, reply, 200, 'client-delete', { title: 'Delete the client', current: '/admin/clients', client: clientModel(client), consequences });
  });

  app.post('/admin/clients/:id/delete', page, async (request, reply) => {
    formOf(csrfForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    await clients.deleteClient(client.clientId, context.actorOf(request));
    return seeOther(reply, '/admin/clients?done=deleted');
  });
}
