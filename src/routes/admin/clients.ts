/**
 * The client pages under /admin/clients (permission auth.clients.manage): the list, registering a client,
 * editing its redirect URIs, grant types and scopes, rotating its secret, the roles of its service account,
 * and deleting it after a page listing what goes with it. Every change goes through the client management
 * service the API uses (`/api/auth/clients/`): the same validation, audit events and no-escalation rules.
 *
 * A secret is shown once, on the page that answers the POST creating or rotating it (201/200 with
 * `Cache-Control: no-store`, as every page), never on a page a GET could show again: a 303 to such a page
 * would need the secret kept somewhere between the two requests. Reloading that answer re-posts the form,
 * which for a rotation rotates again (the browser asks first), and for a creation is refused as a conflict.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import { durationInWords } from '../../lib/duration.js';
import { seeOther } from '../../views/page.js';
import { dateView } from '../../views/date.js';
import type { AdminContext } from './context.js';
import { clientFormSchema, fieldErrorOf, formChoices, formValuesOf, metadataOfForm, type ClientFormValues, type FieldError } from './clients-form.js';
import type { ClientManagementService } from '../../services/clients.js';
import type { RbacService } from '../../services/rbac/service.js';

export interface ClientPageDeps {
  context: AdminContext;
  clients: ClientManagementService;
  rbac: Pick<RbacService, 'listRoles'>;
}

const PAGE_SIZE = 50;
/** Roles offered in the service-account form: one page of the role list (more is a case for the API). */
const ROLE_CHOICES = 200;
const idParams = z.object({ id: z.string().max(200) });
const listQuery = z.object({ cursor: z.string().max(200).optional().catch(undefined), done: z.enum(['updated', 'deleted', 'role-given', 'role-removed']).optional().catch(undefined) });
const csrfForm = z.object({ csrf: z.string().max(100) });
const roleForm = csrfForm.extend({ role: z.string().max(200) });

const NOTICES = {
  updated: 'The client was saved.',
  deleted: 'The client was deleted, with its grants and tokens.',
  'role-given': 'The role was given to the client.',
  'role-removed': 'The role was removed from the client.',
} as const;

type ClientView = Awaited<ReturnType<ClientManagementService['getClient']>>;

const kindOf = (client: ClientView) => (client.token_endpoint_auth_method === 'none' ? 'Public' : 'Confidential');

function clientModel(client: ClientView) {
  return {
    id: client.client_id,
    name: client.client_name ?? client.client_id,
    kind: kindOf(client),
    confidential: client.token_endpoint_auth_method !== 'none',
    grantTypes: client.grant_types.join(', '),
    created: dateView(client.created_at ?? null),
    previousSecretUntil: dateView(client.previous_secret_expires_at ?? null),
  };
}

const pathOf = (clientId: string) => `/admin/clients/${encodeURIComponent(clientId)}`;

export async function adminClientRoutes(app: FastifyInstance, deps: ClientPageDeps): Promise<void> {
  const { context, clients } = deps;
  const page = { config: { page: true, adminPermission: 'auth.clients.manage' } } as const;

  async function sendCreateForm(request: FastifyRequest, reply: FastifyReply, status: number, form: ClientFormValues, error?: FieldError) {
    return context.send(request, reply, status, 'client-new', {
      title: 'Register a client',
      current: '/admin/clients',
      form,
      choices: formChoices(form),
      errors: error?.field ? { [error.field]: error.message } : {},
      error: error && !error.field ? error.message : undefined,
    });
  }

  async function sendClient(request: FastifyRequest, reply: FastifyReply, status: number, client: ClientView, extra: { form?: ClientFormValues; error?: FieldError | undefined; roleError?: string | undefined; notice?: string | undefined } = {}) {
    const form = extra.form ?? formValuesOf(client, client.client_id);
    const [roles, allRoles] = await Promise.all([clients.listClientRoles(client.client_id), deps.rbac.listRoles({ limit: ROLE_CHOICES })]);
    const held = new Set(roles.map((r) => r.roleId));
    return context.send(request, reply, status, 'client', {
      title: `Client ${client.client_name ?? client.client_id}`,
      current: '/admin/clients',
      client: clientModel(client),
      form,
      choices: formChoices(form),
      errors: extra.error?.field ? { [extra.error.field]: extra.error.message } : {},
      error: extra.error && !extra.error.field ? extra.error.message : undefined,
      roles: roles.map((r) => ({ id: r.roleId, name: r.role, expires: dateView(r.expiresAt ?? null) })),
      assignable: allRoles.items.filter((r) => !held.has(r.id)).map((r) => ({ id: r.name, name: r.name })),
      roleError: extra.roleError,
      notice: extra.notice,
    });
  }

  /** The form's fields (its CSRF token was checked by the console's guard before this handler ran). */
  function formOf<T extends z.ZodType>(schema: T, request: FastifyRequest): z.infer<T> {
    const form = schema.safeParse(request.body);
    if (!form.success) throw new AppError('invalid_request', 'the form was not valid: reload the page and try again');
    return form.data;
  }

  app.get('/admin/clients', page, async (request, reply) => {
    const query = listQuery.parse(request.query);
    const result = await clients.listClients({ limit: PAGE_SIZE, cursor: query.cursor });
    return context.send(request, reply, 200, 'clients', {
      title: 'Clients',
      current: '/admin/clients',
      notice: query.done ? NOTICES[query.done] : undefined,
      clients: result.items.map(clientModel),
      firstHref: query.cursor ? '/admin/clients' : undefined,
      nextHref: result.next_cursor ? `/admin/clients?${new URLSearchParams({ cursor: result.next_cursor }).toString()}` : undefined,
    });
  });

  app.get('/admin/clients/new', page, async (request, reply) => sendCreateForm(request, reply, 200, { ...formValuesOf({}), grant_types: ['authorization_code', 'refresh_token'] }));

  app.post('/admin/clients', page, async (request, reply) => {
    const form = formOf(clientFormSchema, request);
    const metadata = metadataOfForm(form);
    const clientId = (form.client_id ?? '').trim();
    const method = form.token_endpoint_auth_method ?? 'client_secret_basic';
    const values: ClientFormValues = { ...formValuesOf({ ...metadata, token_endpoint_auth_method: method }, clientId), redirect_uris: form.redirect_uris ?? '' };
    let created;
    try {
      created = await clients.createClient({ client_id: clientId, token_endpoint_auth_method: method, ...metadata } as never, context.actorOf(request));
    } catch (error) {
      return sendCreateForm(request, reply, 400, values, fieldErrorOf(error));
    }
    if (!created.client_secret) return seeOther(reply, `${pathOf(created.client_id)}?done=created`);
    // The secret exists only in this answer: never a redirect to a page that could show it again.
    return context.send(request, reply, 201, 'client-secret', {
      title: 'Client registered',
      current: '/admin/clients',
      heading: `Client ${created.client_name ?? created.client_id} registered`,
      notice: `The client "${created.client_id}" was registered.`,
      clientId: created.client_id,
      secret: created.client_secret,
    });
  });

  app.get('/admin/clients/:id', page, async (request, reply) => {
    const client = await clients.getClient(idParams.parse(request.params).id);
    const done = z.enum(['created', 'updated', 'role-given', 'role-removed']).optional().catch(undefined).parse((request.query as { done?: unknown }).done);
    return sendClient(request, reply, 200, client, { notice: done === 'created' ? 'The client was registered.' : done ? NOTICES[done] : undefined });
  });

  app.post('/admin/clients/:id', page, async (request, reply) => {
    const form = formOf(clientFormSchema, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    const metadata = metadataOfForm(form);
    try {
      await clients.updateClient(client.client_id, metadata, context.actorOf(request));
    } catch (error) {
      const values: ClientFormValues = { ...formValuesOf({ ...client, ...metadata }, client.client_id), redirect_uris: form.redirect_uris ?? '' };
      return sendClient(request, reply, 400, client, { form: values, error: fieldErrorOf(error) });
    }
    return seeOther(reply, `${pathOf(client.client_id)}?done=updated`);
  });

  app.post('/admin/clients/:id/roles', page, async (request, reply) => {
    const form = formOf(roleForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    try {
      await clients.assignClientRole(client.client_id, form.role, context.actorOf(request));
    } catch (error) {
      if (!(error instanceof AppError) || (error.code !== 'forbidden' && error.code !== 'invalid_request')) throw error;
      return sendClient(request, reply, error.status, client, { roleError: error.message });
    }
    return seeOther(reply, `${pathOf(client.client_id)}?done=role-given`);
  });

  app.post('/admin/clients/:id/roles/remove', page, async (request, reply) => {
    const form = formOf(roleForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    try {
      await clients.removeClientRole(client.client_id, form.role, context.actorOf(request));
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'forbidden') throw error;
      return sendClient(request, reply, error.status, client, { roleError: error.message });
    }
    return seeOther(reply, `${pathOf(client.client_id)}?done=role-removed`);
  });

  app.get('/admin/clients/:id/secret', page, async (request, reply) => {
    const client = await clients.getClient(idParams.parse(request.params).id);
    if (client.token_endpoint_auth_method === 'none') throw new AppError('not_found', 'a public client has no secret', 404);
    return context.send(request, reply, 200, 'client-rotate', { title: 'Rotate the secret', current: '/admin/clients', client: clientModel(client), grace: durationInWords(clients.secretGraceSeconds) });
  });

  app.post('/admin/clients/:id/secret', page, async (request, reply) => {
    formOf(csrfForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    const rotated = await clients.rotateSecret(client.client_id, context.actorOf(request));
    const until = dateView(rotated.previous_secret_expires_at ?? null);
    return context.send(request, reply, 200, 'client-secret', {
      title: 'Secret rotated',
      current: '/admin/clients',
      heading: `New secret of ${client.client_name ?? client.client_id}`,
      notice: 'The secret was rotated.',
      clientId: client.client_id,
      secret: rotated.client_secret,
      graceText: until ? `The previous secret keeps working until ${until.text}, then it is refused.` : undefined,
    });
  });

  app.get('/admin/clients/:id/delete', page, async (request, reply) => {
    const client = await clients.getClient(idParams.parse(request.params).id);
    const usage = await clients.deletionImpact(client.client_id);
    const consequences = [
      `${usage.grants} grant${usage.grants === 1 ? '' : 's'} of users to this client (${usage.users} user${usage.users === 1 ? '' : 's'}), which are revoked`,
      `${usage.tokens} live token${usage.tokens === 1 ? '' : 's'} issued to it (access, refresh and client credentials), which stop working`,
      `${usage.roles} role${usage.roles === 1 ? '' : 's'} of its service account`,
      'its registration: its secret and redirect URIs stop working at once on every server',
    ];
    return context.send(request, reply, 200, 'client-delete', { title: 'Delete the client', current: '/admin/clients', client: clientModel(client), consequences });
  });

  app.post('/admin/clients/:id/delete', page, async (request, reply) => {
    formOf(csrfForm, request);
    const client = await clients.getClient(idParams.parse(request.params).id);
    await clients.deleteClient(client.client_id, context.actorOf(request));
    return seeOther(reply, '/admin/clients?done=deleted');
  });
}
