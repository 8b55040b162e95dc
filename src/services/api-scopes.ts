/**
 * The scopes of keryu-auth's own API (the built-in resource `<issuer origin>/api`), which personal tokens use
 * too: one scope per built-in `auth.*` permission, named after it (`auth.users.manage` ...). A delegated token
 * (an OIDC access token for the API, a personal token) may use a permission only when it carries that
 * permission's scope AND its subject still holds the permission: the scope is what was delegated, the
 * permission what the subject may do. `auth.superuser` stands for every `auth.*` permission, as the permission
 * does. First-party session tokens are the user's own session and carry no scope restriction.
 * @see RFC 6750 §3.1 (insufficient_scope), RFC 8707 §2 (scopes of a resource)
 */
import { holds, SUPERUSER, type Effective } from './rbac/effective.js';
import { BUILTIN_PERMISSIONS, type AuthPermission } from './rbac/service.js';

export const API_SCOPES = Object.keys(BUILTIN_PERMISSIONS) as AuthPermission[];

/** The client metadata property (boolean) that lets a client obtain user tokens for the built-in API resource. */
export const FIRST_PARTY_METADATA = 'first_party';

export function isApiScope(scope: string): scope is AuthPermission {
  return Object.hasOwn(BUILTIN_PERMISSIONS, scope);
}

/** Whether a token carrying `scopes` may use `permission` (its subject must hold it as well). */
export function scopeAllows(scopes: ReadonlySet<string>, permission: string): boolean {
  return scopes.has(permission) || (permission.startsWith('auth.') && scopes.has(SUPERUSER));
}

/** The API scopes a subject's roles allow: what a service account's client-credentials token carries by default. */
export function apiScopesHeldBy(effective: Effective): AuthPermission[] {
  return API_SCOPES.filter((scope) => holds(effective, scope));
}

/**
 * The subject's effective permissions as a token with `scopes` may use them: `auth.*` permissions (and object
 * grants of them) its scopes do not name are dropped, and it is a superuser only with the `auth.superuser`
 * scope. Services compare against this (no-escalation, outrank), so a token scoped to `auth.roles.manage` of a
 * superuser cannot hand out what the token itself may not do. Other permissions (the product's) are kept:
 * they only matter to those comparisons.
 */
export function restrictToScopes(effective: Effective, scopes: ReadonlySet<string>): Effective {
  const allowed = (codename: string) => !codename.startsWith('auth.') || scopeAllows(scopes, codename);
  const permissions = new Map([...effective.permissions].filter(([codename]) => allowed(codename)));
  const superuser = effective.superuser && scopes.has(SUPERUSER);
  const superuserRole = effective.permissions.get(SUPERUSER);
  if (effective.superuser && !superuser && superuserRole !== undefined) {
    // What auth.superuser implied, limited to the scopes named.
    for (const scope of API_SCOPES) if (scopes.has(scope) && !permissions.has(scope)) permissions.set(scope, superuserRole);
  }
  const grants = new Map([...effective.grants].filter(([key]) => allowed(key.split('\u0000')[0] ?? '')));
  return { ...effective, permissions, grants, superuser };
}

const OIDC_SCOPE_WORDS: Record<string, string> = {
  openid: 'Sign you in',
  profile: 'See your name and profile picture',
  email: 'See your email address',
  phone: 'See your phone number',
  address: 'See your postal address',
  offline_access: 'Stay signed in: keep access while you are not using it',
};

/** A scope in plain words, for the consent page; a resource server's own scope is shown by its name. */
export function describeScope(scope: string): string {
  if (isApiScope(scope)) {
    const what = BUILTIN_PERMISSIONS[scope];
    return `Act as you in keryu-auth: ${what.charAt(0).toLowerCase()}${what.slice(1)}`;
  }
  return OIDC_SCOPE_WORDS[scope] ?? scope;
}
