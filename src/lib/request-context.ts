/**
 * Who is asking, as the audit log and the sign-in rules see it: the client address (after the trusted-proxy
 * rewrite in app.ts), the User-Agent and the request id. Routes read it from `request.requestContext` (see
 * plugins/request-context.ts); the provider's Koa handlers build it with `requestContextOfKoa`.
 */
export interface RequestContext {
  ip?: string | undefined;
  userAgent?: string | undefined;
  requestId?: string | undefined;
}

/** The same fields from a Koa context (oidc-provider's handlers). */
export function requestContextOfKoa(ctx: { ip: string; get(header: string): string }): RequestContext {
  return { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined, requestId: ctx.get('x-request-id') || undefined };
}
