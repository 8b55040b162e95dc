/**
 * The pages a password reset email links to, so the link works from any mail client without the app:
 * GET shows the form (or says the link is no longer valid), POST sets the password and answers 303.
 * The CSRF token is bound to the link's token (there is no session on this page): a form can only be
 * posted by someone who holds the link. Pages are not cached, not framed and send no Referer (the URL
 * carries the token).
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AppError } from '../errors/index.js';
import { constantTimeEqual, hmacDigest, sha256 } from '../lib/crypto.js';
import type { PasswordManagementService } from '../services/password-management.js';
import { pageSecurityHeaders, renderPage } from '../views/render.js';

const tokenQuery = z.object({ token: z.string().min(1).max(200) });
const resetForm = z.object({ token: z.string().min(1).max(200), csrf: z.string().max(100), new_password: z.string().max(1024) });

export async function passwordResetPages(app: FastifyInstance, deps: { passwords: PasswordManagementService; csrfKey: Buffer; minLength: number }): Promise<void> {
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody, { bodyLimit: 8 * 1024 });
  const csrfFor = (token: string) => hmacDigest(deps.csrfKey, `password-reset:${sha256(token)}`);

  const send = (reply: FastifyReply, status: number, template: string, model: { title: string; [k: string]: unknown }) =>
    reply.code(status).headers(pageSecurityHeaders).type('text/html; charset=utf-8').send(renderPage(template, model));
  const invalidLink = (reply: FastifyReply) =>
    send(reply, 400, 'message', { title: 'Link expired', heading: 'This link can no longer be used', lines: ['Reset links work once and for 30 minutes. Ask for a new one.'] });
  const form = (reply: FastifyReply, status: number, token: string, error?: string) =>
    send(reply, status, 'password-reset', { title: 'Choose a new password', action: '/password/reset', csrf: csrfFor(token), token, error, minLength: deps.minLength });

  app.get('/password/reset', { schema: { hide: true } }, async (request, reply) => {
    const query = tokenQuery.safeParse(request.query);
    if (!query.success || !(await deps.passwords.isResetTokenUsable(query.data.token))) return invalidLink(reply);
    return form(reply, 200, query.data.token);
  });

  app.post('/password/reset', { schema: { hide: true } }, async (request, reply) => {
    const body = resetForm.safeParse(request.body);
    if (!body.success || !constantTimeEqual(csrfFor(body.data.token), body.data.csrf)) {
      return send(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Open the link from your email again.'] });
    }
    try {
      await deps.passwords.confirmReset(body.data.token, body.data.new_password, request.requestContext);
    } catch (err) {
      if (err instanceof AppError && err.code === 'weak_password') return form(reply, 400, body.data.token, err.message);
      if (err instanceof AppError && err.code === 'invalid_reset_token') return invalidLink(reply);
      throw err;
    }
    return reply.code(303).header('cache-control', 'no-store').redirect('/password/reset/done', 303);
  });

  app.get('/password/reset/done', { schema: { hide: true } }, async (_request, reply) =>
    send(reply, 200, 'message', { title: 'Password changed', heading: 'Your password has been changed', lines: ['You have been signed out everywhere. Sign in again with your new password.'] }),
  );
}
