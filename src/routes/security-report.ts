/**
 * The page a "This wasn't me" link opens (new-device, new-IP and factor-change emails). It works without
 * signing in. GET only shows what will happen and a button, so a mail scanner that fetches the link
 * changes nothing; the POST (CSRF token bound to the link's token) ends every session of the account,
 * distrusts the reported device, removes the factors added since the reported sign-in and requires a
 * password reset before the next sign-in.
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { SecurityNotices } from '../services/mfa/notices.js';
import type { FormCsrf } from '../views/csrf.js';
import { messagePage, sendPage } from '../views/page.js';

const tokenQuery = z.object({ token: z.string().min(1).max(200) });
const reportForm = z.object({ token: z.string().min(1).max(200), csrf: z.string() });

const CSRF_PURPOSE = 'security-report';

export async function securityReportPages(app: FastifyInstance, deps: { notices: SecurityNotices; csrf: FormCsrf }): Promise<void> {
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody, { bodyLimit: 8 * 1024 });
  const page = { config: { page: true }, schema: { hide: true } };
  const invalidLink = (reply: FastifyReply) =>
    sendPage(
      reply,
      messagePage(400, 'Link expired', ['It was used already or has expired. If you think someone else is using your account, reset your password.'], 'This link can no longer be used'),
    );

  app.get('/security/report', page, async (request, reply) => {
    const query = tokenQuery.safeParse(request.query);
    if (!query.success || !(await deps.notices.isReportUsable(query.data.token))) return invalidLink(reply);
    return sendPage(reply, {
      status: 200,
      template: 'security-report',
      model: { title: 'Secure your account', action: '/security/report', csrf: deps.csrf.issue(CSRF_PURPOSE, query.data.token), token: query.data.token },
    });
  });

  app.post('/security/report', page, async (request, reply) => {
    const body = reportForm.safeParse(request.body);
    if (!body.success || !deps.csrf.verify(CSRF_PURPOSE, body.data.token, body.data.csrf)) {
      return sendPage(reply, messagePage(403, 'Request refused', ['The form was not valid. Open the link from your email again.']));
    }
    const secured = await deps.notices.report(body.data.token, request.requestContext);
    if (!secured) return invalidLink(reply);
    return sendPage(
      reply,
      messagePage(
        200,
        'Account secured',
        [
          'Every session has been signed out and the device was forgotten.',
          ...(secured.removedFactors.length ? [`These sign-in methods, added since, were removed: ${secured.removedFactors.join(', ')}.`] : []),
          'Reset your password before you sign in again: use "Forgot password" or the password reset link in the app.',
        ],
        'Your account is secured',
      ),
    );
  });
}
