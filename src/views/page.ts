/**
 * The one way a Fastify route answers with an HTML page: `sendPage` with a view model (the security headers
 * of views/render.ts come with it), `seeOther` after a POST, and `sendErrorPage` for failures in plain
 * words. Routes that answer browsers declare `config: { page: true }` (the shared error handler then
 * renders its errors as pages too); forms carry a token from views/csrf.ts.
 */
import type { FastifyReply } from 'fastify';
import { contentSecurityPolicy, pageSecurityHeaders, renderPage, type PageModel } from './render.js';

export type { PageModel } from './render.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route answers browsers: errors on it are answered with an HTML page (plugins/error-handler.ts). */
    page?: boolean;
  }
}

/** A page to send: the template, its view model and the status it answers with. */
export interface PageView {
  status: number;
  template: string;
  model: PageModel;
  /** Origins this page loads an image from besides ours (exact origins; see contentSecurityPolicy). */
  imageOrigins?: readonly string[] | undefined;
  /** The page carries our one external script (passkeys): its policy allows `script-src 'self'`. */
  scripts?: boolean | undefined;
}

export function sendPage(reply: FastifyReply, view: PageView): FastifyReply {
  const custom = view.imageOrigins?.length || view.scripts;
  const headers = custom ? { ...pageSecurityHeaders, 'content-security-policy': contentSecurityPolicy(view.imageOrigins, { scripts: view.scripts }) } : pageSecurityHeaders;
  return reply.code(view.status).headers(headers).type('text/html; charset=utf-8').send(renderPage(view.template, view.model));
}

/** The plain page of a message: a heading and a few lines (an expired link, a refused form, an error). */
export function messagePage(status: number, title: string, lines: string[], heading = title): PageView {
  return { status, template: 'message', model: { title, heading, lines } };
}

/** An error as a page: what went wrong in plain words; the details are for the log, never the page. */
export function sendErrorPage(reply: FastifyReply, status: number, title: string, message: string): FastifyReply {
  return sendPage(reply, messagePage(status, title, [message]));
}

/**
 * The answer to a form POST: 303, so the browser follows with GET and never re-posts the form (RFC 9110
 * §15.4.4; RFC 9700 §4.12 for credentials), and nothing of it is cached.
 */
export function seeOther(reply: FastifyReply, location: string): FastifyReply {
  return reply.code(303).header('cache-control', 'no-store').redirect(location, 303);
}
