/**
 * The template engine and the headers of every page. Eta with auto-escaping: `<%= %>` escapes; `<%~ %>` is
 * used only for HTML the provider itself generated (its hidden forms). Handlers pass view models, never
 * database rows. Framework-free: the Fastify pages (views/page.ts) and the provider's pages (Koa, in
 * oidc/provider.ts) both render and set headers through here.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

/** Templates live beside this file's source; the same path works from src/ (tsx) and dist/ (built). */
const viewsDir = fileURLToPath(new URL('../../src/views/pages', import.meta.url));
const eta = new Eta({ views: viewsDir, autoEscape: true, cache: true, autoTrim: false });

export const stylesheet = readFileSync(fileURLToPath(new URL('../../src/views/keryu.css', import.meta.url)), 'utf8');

export interface PageModel {
  title: string;
  [key: string]: unknown;
}

export function renderPage(template: string, model: PageModel): string {
  return eta.render(template, model);
}

/**
 * The pages' Content-Security-Policy. `imageOrigins`: origins one page may load images from besides ours (the
 * consent page's client logo), each an exact origin (`URL.origin`), never a scheme-wide source like `https:`.
 * Pages without our script allow no script at all.
 */
export function contentSecurityPolicy(imageOrigins: readonly string[] = [], options: { scripts?: boolean } = {}): string {
  // `scripts`: the page carries our one external script (views/passkey-script.ts), which also asks our origin
  // for passkey options. Never 'unsafe-inline' or 'unsafe-eval'.
  const scripts = options.scripts ? "; script-src 'self'; connect-src 'self'" : '';
  return `default-src 'none'; style-src 'self'; img-src ${["'self'", 'data:', ...imageOrigins].join(' ')}${scripts}; frame-ancestors 'none'; base-uri 'none'`;
}

/**
 * Headers every HTML page carries, ours and the provider's alike. The Content-Security-Policy allows no
 * script at all and styles only from our stylesheet (no inline script or style); `frame-ancestors 'none'`
 * and X-Frame-Options stop framing (clickjacking); pages holding forms or secrets are never cached
 * (`no-store`); no Referer leaves a page whose URL may carry a token. No `form-action`: browsers apply it to
 * the redirects after a POST, and a finished sign-in redirects to the client's own origin.
 */
export const pageSecurityHeaders: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': contentSecurityPolicy(),
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
});
