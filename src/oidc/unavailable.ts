/**
 * The provider's answer when the database is unavailable: 503 with Retry-After and the OAuth error
 * `temporarily_unavailable` (RFC 6749 §4.1.2.1), as JSON for API callers and as a plain page for browsers,
 * instead of the library's `server_error` 500.
 *
 * The seam: the library catches an endpoint's error in its own handler, renders `server_error` and emits
 * `server_error` with the context and the error. The listener marks that context; a middleware around every
 * endpoint (registered with `provider.use`, so it runs outside the library's handler) rewrites the marked
 * answer on the way out.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../errors/unavailable.js';
import { page } from './provider.js';

const DESCRIPTION = 'the service is temporarily unavailable; retry later';

export function registerUnavailableAnswers(provider: Provider): void {
  const unavailable = new WeakSet<object>();
  provider.on('server_error', (ctx, err) => {
    if (isDatabaseUnavailable(err)) unavailable.add(ctx);
  });
  provider.use(async (ctx, next) => {
    await next();
    if (!unavailable.has(ctx)) return;
    ctx.status = 503;
    ctx.set('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
    ctx.set('cache-control', 'no-store');
    if (typeof ctx.body === 'string') {
      page(ctx as KoaContextWithOIDC, 'message', { title: 'Temporarily unavailable', heading: 'Temporarily unavailable', lines: ['The service cannot complete this request right now. Try again in a moment.'] });
      ctx.status = 503;
    } else {
      ctx.body = { error: 'temporarily_unavailable', error_description: DESCRIPTION };
    }
  });
}
