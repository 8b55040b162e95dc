/**
 * Helpers for the authorization API tests: service-account clients with roles, users with roles and a Bearer
 * token from the real code flow, and a tiny JSON client.
 */
import * as client from 'openid-client';
import { API_SCOPES } from '../../src/services/api-scopes.js';
import { createRbacQueries } from '../../src/queries/rbac.js';
import { systemActor } from '../../src/services/rbac/service.js';
import type { TestServer } from './server.js';
import { discover, loginWithCode, seedClient, seedUser } from './oidc.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

// Test-only: response bodies are inspected loosely; the API's types are checked by its zod schemas.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Api = <T = Record<string, any>>(method: string, path: string, body?: unknown) => Promise<ApiResponse<T>>;

export function apiClient(origin: string, token: string | undefined): Api {
  return async (method, path, body) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${origin}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
  };
}

/** The operator: what the tests' own set-up acts as (through the same write path as the API). */
export const operator = systemActor({ type: 'system' });

/**
 * Test set-up: gives a user (or a service-account client) roles straight in the database, unaudited (so tests
 * of the audit log and alerts see only what they do themselves), then tells the decision caches through the
 * rbac service's public seam.
 */
export async function assignRoles(server: TestServer, userId: string, roles: string[]): Promise<void> {
  const q = createRbacQueries(server.app.keryu.database.db);
  const rows = await q.findRolesByNames(roles);
  if (rows.length !== roles.length) throw new Error(`unknown role among ${roles.join(', ')}`);
  for (const role of rows) await q.upsertUserRole(userId, role.id, null);
  await server.app.keryu.services.rbac.notifyChanged();
}

export async function assignClientRoles(server: TestServer, clientId: string, roles: string[]): Promise<void> {
  const q = createRbacQueries(server.app.keryu.database.db);
  const rows = await q.findRolesByNames(roles);
  if (rows.length !== roles.length) throw new Error(`unknown role among ${roles.join(', ')}`);
  for (const role of rows) await q.insertClientRole(clientId, role.id);
  await server.app.keryu.services.rbac.notifyChanged();
}

/** A confidential client with the client_credentials grant holding `roles`, and a fresh access token (for the API unless `resource` says otherwise). */
export async function serviceAccount(server: TestServer, roles: string[], options: { resource?: string } = {}) {
  const seeded = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  await assignClientRoles(server, seeded.clientId, roles);
  const config = await discover(server, seeded);
  const params: Record<string, string> = { resource: options.resource ?? server.config.apiAudience };
  const tokens = await client.clientCredentialsGrant(config, params);
  return { clientId: seeded.clientId, clientSecret: seeded.clientSecret, token: tokens.access_token, api: apiClient(server.origin, tokens.access_token) };
}

/**
 * A user holding `roles`, signed in through the code flow of a first-party
 * client, with a token for the API carrying `scopes` (every API scope by default).
 */
export async function userWithToken(server: TestServer, email: string, roles: string[] = [], options: { scopes?: readonly string[] } = {}) {
  const user = await seedUser(server, email);
  await assignRoles(server, user.id, roles);
  const seeded = await seedClient(server, { first_party: true });
  const config = await discover(server, seeded);
  const scope = ['openid', 'offline_access', ...(options.scopes ?? API_SCOPES)].join(' ');
  const { tokens } = await loginWithCode(server, config, { email, scope, resource: server.config.apiAudience });
  return { user, token: tokens.access_token, api: apiClient(server.origin, tokens.access_token) };
}
