/**
 * The activity page: the user's own audit events, newest first, in plain words, filtered by kind (a GET form)
 * and paged by cursor (the activity service behind GET /api/auth/activity/). "This wasn't me" next to a
 * sign-in starts the report flow of the security emails: a single-use report dated from that sign-in, then
 * the same confirmation page (/security/report) an email's link opens, so there is one implementation of
 * what a report does.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Clock } from '../../lib/clock.js';
import { MAX_PAGE_SIZE, pageLinks } from '../../lib/pagination.js';
import { ACTIVITY_KINDS, type ActivityService } from '../../services/activity.js';
import type { SecurityNotices } from '../../services/mfa/notices.js';
import { seeOther } from '../../views/page.js';
import { ACTIVITY_KIND_LABELS, activityItemView } from './activity-view.js';
import type { AccountContext } from './context.js';

/** A screenful: enough to see a day's sign-ins, short enough to read on a phone. */
export const ACTIVITY_PAGE_SIZE = 25;

const KINDS = ['all', ...Object.keys(ACTIVITY_KINDS)] as [keyof typeof ACTIVITY_KIND_LABELS, ...Array<keyof typeof ACTIVITY_KIND_LABELS>];

const activityQuery = z.object({
  kind: z.enum(KINDS).default('all'),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(ACTIVITY_PAGE_SIZE),
  cursor: z.string().max(200).optional(),
});
const reportForm = z.object({ csrf: z.string().max(100), event: z.string().max(100) });

export interface ActivityDeps {
  context: AccountContext;
  activity: Pick<ActivityService, 'listUserActivity' | 'findOwnSignIn'>;
  notices: Pick<SecurityNotices, 'signInReportLink'>;
  clock: Clock;
}

export async function accountActivityRoutes(app: FastifyInstance, deps: ActivityDeps): Promise<void> {
  const { context } = deps;

  app.get('/account/activity', { config: { page: true }, preHandler: context.requireSession }, async (request, reply) => {
    const session = request.account!;
    const query = activityQuery.safeParse(request.query);
    if (!query.success) {
      return context.send(reply, session, 400, 'message', {
        title: 'Activity',
        current: '/account/activity',
        heading: 'This list cannot be shown',
        lines: ['The address of this page was changed or is too old.'],
        link: { href: '/account/activity', label: 'Show the latest activity' },
      });
    }
    const { kind, limit, cursor } = query.data;
    const page = await deps.activity.listUserActivity(session.user.id, { limit, cursor }, kind);
    const now = deps.clock();
    const links = pageLinks('/account/activity', { kind: kind === 'all' ? undefined : kind, limit: limit === ACTIVITY_PAGE_SIZE ? undefined : String(limit) }, page, cursor);
    return context.send(reply, session, 200, 'activity', {
      title: 'Activity',
      current: '/account/activity',
      kinds: KINDS.map((value) => ({ value, label: ACTIVITY_KIND_LABELS[value], selected: value === kind })),
      kindLabel: ACTIVITY_KIND_LABELS[kind],
      limit: limit === ACTIVITY_PAGE_SIZE ? undefined : limit,
      items: page.items.map((row) => activityItemView(row, now)),
      newerHref: links.first,
      olderHref: links.next,
    });
  });

  app.post('/account/activity/report', { config: { page: true }, preHandler: context.requireSession }, async (request, reply) => {
    const session = request.account!;
    const form = reportForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    const signIn = await deps.activity.findOwnSignIn(session.user.id, form.data.event);
    const link = signIn && (await deps.notices.signInReportLink(session.user.id, { eventId: signIn.id, at: signIn.occurredAt, ip: signIn.ip }));
    if (!link) {
      return context.send(reply, session, 404, 'message', {
        title: 'Not found',
        current: '/account/activity',
        heading: 'This sign-in cannot be reported here',
        lines: ['It is not one of your recent sign-ins. If you think someone else is using your account, change your password and sign out everywhere.'],
        link: { href: '/account/activity', label: 'Back to your activity' },
      });
    }
    return seeOther(reply, link);
  });
}
