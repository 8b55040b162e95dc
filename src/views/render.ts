/**
 * Server-rendered pages. Eta with auto-escaping: `<%= %>` escapes; `<%~ %>` is used only for HTML the
 * provider itself generated (its hidden forms). Handlers pass view models, never database rows.
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

/** Headers every HTML page carries: no framing (clickjacking), no caching of pages holding forms. */
export const pageSecurityHeaders: Record<string, string> = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};
