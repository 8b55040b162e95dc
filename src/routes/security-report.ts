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
import { constantTimeEqual, hmacDigest, sha256 } from '../lib/crypto.js';
import type { SecurityNotices } from '../services/mfa/notices.js';
import { pageSecurityHeaders, renderPage } from '../views/render.js';

const tokenQuery = z.object({ token: z.string().min(1).max(200) });
const reportForm = z.object({ token: z.string().min(1).max(200), csrf: z.string().max(100) });

export async function securityReportPages(app: FastifyInstance, deps: { notices: SecurityNotices; csrfKey: Buffer }): Promise<void> {
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) await app.register(formbody, { bodyLimit: 8 * 1024 });
  const csrfFor = (token: string) => hmacDigest(deps.csrfKey, `security-report:${sha256(token)}`);
  const send = (reply: FastifyReply, status: number, template: string, model: { title: string; [k: string]: unknown }) =>
    reply.code(status).headers(pageSecurityHeaders).type('text/html; charset=utf-8').send(renderPage(template, model));
  const invalidLink = (reply: FastifyReply) =>
    send(reply, 400, 'message', { title: 'Link expired', heading: 'This link can no longer be used', lines: ['It was used already or has expired. If you think someone else is using your account, reset your password.'] });

  app.get('/security/report', { schema: { hide: true } }, async (request, reply) => {
    const query = tokenQuery.safeParse(request.query);
    if (!query.success || !(await deps.notices.isReportUsable(query.data.token))) return invalidLink(reply);
    return send(reply, 200, 'security-report', { title: 'Secure your account', action: '/security/report', csrf: csrfFor(query.data.token), token: query.data.token });
  });

  app.post('/security/report', { schema: { hide: true } }, async (request, reply) => {
    const body = reportForm.safeParse(request.body);
    if (!body.success || !constantTimeEqual(csrfFor(body.data.token), body.data.csrf)) {
      return send(reply, 403, 'message', { title: 'Request refused', heading: 'Request refused', lines: ['The form was not valid. Open the link from your email again.'] });
    }
    const secured = await deps.notices.report(body.data.token, request.requestContext);
    if (!secured) return invalidLink(reply);
    return send(reply, 200, 'message', {
      title: 'Account secured',
      heading: 'Your account is secured',
      lines: [
        'Every session has been signed out and the device was forgotten.',
        ...(secured.removedFactors.length ? [`These sign-in methods, added since, were removed: ${secured.removedFactors.join(', ')}.`] : []),
        'Reset your password before you sign in again: use "Forgot password" or the password reset link in the app.',
      ],
    });
  });
}
