/**
 * OAuth error codes oidc-provider gets wrong, corrected in its JSON answers (provider.use, after the route)
 * and in what the audit log records of them. A client authenticated at the token or device authorization
 * endpoint that asks for a grant type it is not registered for must get `unauthorized_client` (RFC 6749
 * §5.2, used by RFC 8628 §3.2); the library throws `invalid_request` for it.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/** The library's descriptions of a grant type the client may not use, by the route that answers them. */
const GRANT_TYPE_NOT_ALLOWED: Record<string, string> = {
  token: 'requested grant type is not allowed for this client',
  device_authorization: 'urn:ietf:params:oauth:grant-type:device_code is not allowed for this client',
};

/** The error code the standards name for a library error (its own code when it is right). */
export function standardErrorCode(route: string | undefined, error: string | undefined, description: string | undefined): string | undefined {
  if (error === 'invalid_request' && route && description !== undefined && GRANT_TYPE_NOT_ALLOWED[route] === description) return 'unauthorized_client';
  return error;
}

export function registerErrorCodeCorrections(provider: Provider): void {
  provider.use(async (koaCtx, next) => {
    await next();
    const ctx = koaCtx as KoaContextWithOIDC;
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (ctx.status !== 400 || typeof body?.error !== 'string' || typeof body.error_description !== 'string') return;
    const corrected = standardErrorCode(ctx.oidc?.route, body.error, body.error_description);
    if (corrected !== body.error) ctx.body = { ...body, error: corrected };
  });
}
