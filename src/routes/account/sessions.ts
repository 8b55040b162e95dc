/**
 * Sessions and devices: everything the user is signed in with (first-party sessions, browser SSO sessions,
 * app grants, personal tokens) with the account pages' own browser session marked "this device"; signing
 * out one, signing out everywhere else, and forgetting a trusted device. Each action goes through a
 * confirmation page, answers 303, and calls the same service as its JSON API counterpart (so it is audited
 * the same). Another user's id answers 404 and changes nothing.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../errors/index.js';
import type { DeviceInfo } from '../../lib/device.js';
import { networkOf } from '../../lib/network.js';
import { ACCOUNT_CLIENT_ID } from '../../services/account/relying-party.js';
import type { ActiveAccountSession } from '../../services/account/session.js';
import type { createTrustedDeviceService } from '../../services/mfa/devices.js';
import { describeDeviceInfo } from '../../services/mfa/notices.js';
import type { SessionService } from '../../services/sessions.js';
import type { TokenView } from '../../services/sessions/model.js';
import { pageLinks } from '../../lib/pagination.js';
import { dateView } from '../../views/date.js';
import { seeOther } from '../../views/page.js';
import type { AccountContext } from './context.js';

/** Entries per page of the list: more than a person has signed in with, small enough to read. */
const PAGE_SIZE = 50;
const PATH = '/account/sessions';

const idParams = z.object({ id: z.string().max(100) });
const confirmForm = z.object({ csrf: z.string().max(100) });
const listQuery = z.object({
  done: z.enum(['signed-out', 'others', 'forgotten']).optional().catch(undefined),
  cursor: z.string().max(200).optional().catch(undefined),
});

const DONE_NOTICES = {
  'signed-out': 'That session was signed out.',
  others: 'You were signed out everywhere else. This device stays signed in.',
  forgotten: 'That device was forgotten: its next sign-in will be verified again.',
} as const;

const KIND_LABELS: Record<TokenView['kind'], string> = {
  session: 'App sign-in',
  oidc_session: 'Browser sign-in',
  oidc_grant: 'Application access',
  personal: 'Personal token',
};

export interface SessionsDeps {
  context: AccountContext;
  signIns: Pick<SessionService, 'listTokens' | 'findToken' | 'findBrowserSessionEntryId' | 'deleteToken' | 'logoutEverywhereElse'>;
  devices: Pick<ReturnType<typeof createTrustedDeviceService>, 'list' | 'distrust'>;
}


function deviceName(info: DeviceInfo): string {
  const described = describeDeviceInfo(info);
  return described.charAt(0).toUpperCase() + described.slice(1);
}

/** The address and its network (IPv4 /24, IPv6 /64): where a sign-in came from, without a location lookup. */
function origin(ip: string | null) {
  return { ip: ip ?? 'Unknown', network: networkOf(ip ?? undefined) };
}

function entryView(entry: TokenView) {
  return {
    id: entry.id,
    kind: KIND_LABELS[entry.kind],
    // A personal token or an app's access is known by its name (the client's id for an app); a sign-in by its device.
    title: entry.kind === 'personal' || entry.kind === 'oidc_grant' ? `${KIND_LABELS[entry.kind]}: ${entry.name ?? 'unnamed'}` : deviceName(entry.device_info),
    device: deviceName(entry.device_info),
    ...origin(entry.ip_address),
    created: dateView(entry.created_at),
    lastUsed: dateView(entry.last_used_at),
    current: entry.current,
  };
}

export async function accountSessionsRoutes(app: FastifyInstance, deps: SessionsDeps): Promise<void> {
  const { context } = deps;
  const signedIn = { config: { page: true }, preHandler: context.requireSession };
  const thisBrowser = (session: ActiveAccountSession) => ({ clientId: ACCOUNT_CLIENT_ID, sid: session.sid });
  const currentEntryId = (session: ActiveAccountSession) => deps.signIns.findBrowserSessionEntryId(session.userId, thisBrowser(session));

  async function findEntry(session: ActiveAccountSession, id: string): Promise<TokenView> {
    const entry = await deps.signIns.findToken(session.userId, id, await currentEntryId(session));
    if (!entry?.is_active) throw new AppError('not_found', 'no such session', 404);
    return entry;
  }
  async function findDevice(session: ActiveAccountSession, id: string) {
    const device = (await deps.devices.list(session.userId)).find((d) => d.id === id);
    if (!device) throw new AppError('not_found', 'no such device', 404);
    return device;
  }

  app.get(PATH, signedIn, async (request, reply) => {
    const session = request.account!;
    const query = listQuery.parse(request.query);
    const [page, devices] = await Promise.all([
      currentEntryId(session).then((current) => deps.signIns.listTokens(session.userId, current, { limit: PAGE_SIZE, cursor: query.cursor, active: true })),
      deps.devices.list(session.userId),
    ]);
    const entries = page.items.map(entryView);
    return context.send(reply, session, 200, 'sessions', {
      title: 'Sessions and devices',
      current: PATH,
      notice: query.done ? DONE_NOTICES[query.done] : undefined,
      // This device first, then newest first.
      entries: [...entries.filter((e) => e.current), ...entries.filter((e) => !e.current)],
      others: entries.some((e) => !e.current),
      next: pageLinks(PATH, {}, page, undefined).next,
      devices: devices.map((d) => ({ id: d.id, name: deviceName(d.device_info), ...origin(d.ip_address), lastSeen: dateView(d.last_seen_at), until: dateView(d.trusted_until) })),
    });
  });

  // Signing out one entry: the API's DELETE /api/auth/tokens/:id/ (revoked with what the provider holds, deleted, audited).
  app.get(`${PATH}/:id/sign-out`, signedIn, async (request, reply) => {
    const session = request.account!;
    const entry = entryView(await findEntry(session, idParams.parse(request.params).id));
    return context.send(reply, session, 200, 'sessions-confirm', {
      title: 'Sign out this session?',
      current: PATH,
      heading: 'Sign out this session?',
      lines: [
        `${entry.title} (${entry.kind}), from ${entry.ip}${entry.network ? `, network ${entry.network}` : ''}.`,
        entry.current
          ? 'This is the device you are using: you will be signed out here.'
          : 'It stops working at once; whoever uses it has to sign in again.',
      ],
      action: `${PATH}/${entry.id}/sign-out`,
      button: 'Sign out',
    });
  });
  app.post(`${PATH}/:id/sign-out`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = confirmForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await deps.signIns.deleteToken(session.userId, idParams.parse(request.params).id, request.requestContext);
    return seeOther(reply, `${PATH}?done=signed-out`);
  });

  // Everywhere else: the API's logout everywhere (same audit events), keeping this browser's SSO session.
  app.get(`${PATH}/sign-out-others`, signedIn, async (request, reply) => {
    const session = request.account!;
    return context.send(reply, session, 200, 'sessions-confirm', {
      title: 'Sign out everywhere else?',
      current: PATH,
      heading: 'Sign out everywhere else?',
      lines: [
        'Every other browser and app signed in to your account is signed out, and every application you allowed and every personal token stops working.',
        'This device stays signed in. Trusted devices are kept: forget them separately.',
      ],
      action: `${PATH}/sign-out-others`,
      button: 'Sign out everywhere else',
    });
  });
  app.post(`${PATH}/sign-out-others`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = confirmForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await deps.signIns.logoutEverywhereElse(session.userId, thisBrowser(session), request.requestContext);
    return seeOther(reply, `${PATH}?done=others`);
  });

  // Forgetting a trusted device: the MFA API's distrust (audited as device.distrusted).
  app.get(`${PATH}/devices/:id/forget`, signedIn, async (request, reply) => {
    const session = request.account!;
    const device = await findDevice(session, idParams.parse(request.params).id);
    return context.send(reply, session, 200, 'sessions-confirm', {
      title: 'Forget this device?',
      current: PATH,
      heading: 'Forget this device?',
      lines: [
        `${deviceName(device.device_info)}, last seen from ${device.ip_address ?? 'an unknown address'}.`,
        'Its next sign-in is verified again, as for a new device. Sessions it has now are not signed out.',
      ],
      action: `${PATH}/devices/${device.id}/forget`,
      button: 'Forget this device',
    });
  });
  app.post(`${PATH}/devices/:id/forget`, signedIn, async (request, reply) => {
    const session = request.account!;
    const form = confirmForm.safeParse(request.body);
    if (!form.success || !context.csrfValid(session, form.data.csrf)) return context.refused(reply);
    await deps.devices.distrust(session.userId, idParams.parse(request.params).id, request.requestContext);
    return seeOther(reply, `${PATH}?done=forgotten`);
  });
}
