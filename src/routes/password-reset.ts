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
import type { PasswordManagementService } from '../services/password-management.js';
import type { FormCsrf } from '../views/csrf.js';
import { messagePage, seeOther, sendPage } from '../views/page.js';
import { durationInWords } from '../lib/duration.js';

const tokenQuery = z.object({ token: z.string().min(1).max(200) });
const resetForm = z.object({ token: z.string().min(1).max(200), csrf: z.string(), new_password: z.string().max(1024) });

export interface PasswordResetPageDeps {
  passwords: PasswordManagementService;
  csrf: FormCsrf;
  minLength: number;
  /** PASSWORD_RESET_TTL, which the expired-link page states. */
  resetTtlSeconds: number;
}

const CSRF_PURPOSE = 'password-reset';

export async function passwordResetPages(app: FastifyInstance, deps: PasswordResetPageDeps): Promise<void> {
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody, { bodyLimit: 8 * 1024 });
  const page = { config: { page: true }, schema: { hide: true } };

  const invalidLink = (reply: FastifyReply) =>
    sendPage(reply, messagePage(400, 'Link expired', [`Reset links work once and for ${durationInWords(deps.resetTtlSeconds)}. Ask for a new one.`], 'This link can no longer be used'));
  const form = (reply: FastifyReply, status: number, token: string, error?: string) =>
    sendPage(reply, {
      status,
      template: 'password-reset',
      model: { title: 'Choose a new password', action: '/password/reset', csrf: deps.csrf.issue(CSRF_PURPOSE, token), token, error, minLength: deps.minLength },
    });

  app.get('/password/reset', page, async (request, reply) => {
    const query = tokenQuery.safeParse(request.query);
    if (!query.success || !(await deps.passwords.isResetTokenUsable(query.data.token))) return invalidLink(reply);
    return form(reply, 200, query.data.token);
  });

  app.post('/password/reset', page, async (request, reply) => {
    const body = resetForm.safeParse(request.body);
    if (!body.success || !deps.csrf.verify(CSRF_PURPOSE, body.data.token, body.data.csrf)) {
      return sendPage(reply, messagePage(403, 'Request refused', ['The form was not valid. Open the link from your email again.']));
    }
    try {
      await deps.passwords.confirmReset(body.data.token, body.data.new_password, request.requestContext);
    } catch (err) {
      if (err instanceof AppError && err.code === 'weak_password') return form(reply, 400, body.data.token, err.message);
      if (err instanceof AppError && err.code === 'invalid_reset_token') return invalidLink(reply);
      throw err;
    }
    return seeOther(reply, '/password/reset/done');
  });

  app.get('/password/reset/done', page, async (_request, reply) =>
    sendPage(reply, messagePage(200, 'Password changed', ['You have been signed out everywhere. Sign in again with your new password.'], 'Your password has been changed')),
  );
}
