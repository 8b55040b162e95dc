/**
 * The device verification form posted without the session cookie (a browser that refuses cookies, a form
 * left open too long, a cross-site post): oidc-provider 9.13 renders its input form again for the error, which
 * marks the session it created for the request as changed, and then fails to save that never-stored session
 * (a 500). This Koa middleware (provider.use) answers that case with a 400 page that starts again from the
 * device page, which opens a fresh session; nothing was approved.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

export function registerDeviceFormRecovery(provider: Provider, render: (ctx: KoaContextWithOIDC, restartUrl: string) => void): void {
  provider.use(async (koaCtx, next) => {
    try {
      await next();
    } catch (err) {
      const ctx = koaCtx as KoaContextWithOIDC;
      // `new`: the session was made for this request and never stored (no cookie came with it).
      const session = ctx.oidc?.session as { new?: boolean } | undefined;
      if (ctx.method !== 'POST' || ctx.oidc?.route !== 'code_verification' || !session?.new) throw err;
      ctx.status = 400;
      render(ctx, ctx.oidc.urlFor('code_verification'));
    }
  });
}
