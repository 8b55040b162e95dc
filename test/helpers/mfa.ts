/**
 * Helpers for the MFA API tests: a server wired to a loopback SMTP server and a loopback Twilio endpoint
 * (the real SDK), a manual clock, sign-in steps, codes read from the messages the server sent, TOTP codes
 * computed at the server's time, and the audit log.
 */
import { generate } from 'otplib';
import type { Test } from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import type { UserRow } from '../../src/queries/users.js';
import { api, manualClock, NO_RATE_LIMITS, seedAuthUser, type JsonResponse, type Pair } from './auth.js';
import { startServer, type TestServer } from './server.js';
import { startSmtpServer, type ReceivedMail } from './smtp.js';
import { startTwilioServer } from './twilio.js';
import { TEST_PASSWORD } from './defaults.js';

export interface Challenge {
  mfa_required: true;
  challenge_id: string;
  reason: 'mfa' | 'new_device' | 'new_ip' | 'enroll';
  methods: string[];
  expires_in: number;
  sent?: { method: string; destination: string };
}

/** Whatever a sign-in endpoint answers: a token pair, a further step, or an error. */
export type LoginAnswer = Partial<Pair> & Partial<Challenge> & { error?: string; message?: string; attempts_left?: number; retry_after?: number; device_token?: string };

export type ManualClock = ReturnType<typeof manualClock>;

export async function startMfaServer(t: Test, env: Record<string, string> = {}) {
  const smtp = await startSmtpServer();
  const twilio = await startTwilioServer();
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, ...twilio.env, SMTP_URL: smtp.url, TRUST_PROXY: 'true', ...env }, clock });
  t.teardown(async () => {
    await server.close();
    await smtp.close();
    await twilio.close();
  });
  return { server, smtp, twilio, clock };
}
export type MfaServer = Awaited<ReturnType<typeof startMfaServer>>;

/** Headers of a request from another client address (the server trusts X-Forwarded-For in these tests). */
export const from = (ip: string, headers: Record<string, string> = {}) => ({ 'x-forwarded-for': ip, ...headers });

export function loginAs(server: TestServer, email: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<JsonResponse<LoginAnswer>> {
  return api<LoginAnswer>(server, 'POST', '/api/auth/login/', { body: { email, password: TEST_PASSWORD, ...extra }, headers });
}

export function verify(server: TestServer, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<JsonResponse<LoginAnswer>> {
  return api<LoginAnswer>(server, 'POST', '/api/auth/verify/', { body, headers });
}

export function resend(server: TestServer, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return api<{ method?: string; destination?: string; expires_in?: number; error?: string; retry_after?: number }>(server, 'POST', '/api/auth/verify/resend/', { body, headers });
}

/** A sign-in that must stop at a further step: its challenge. */
export async function challengeFor(server: TestServer, email: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Challenge> {
  const res = await loginAs(server, email, extra, headers);
  if (res.status !== 200 || !res.body.challenge_id) throw new Error(`expected a challenge, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Challenge;
}

/** A sign-in that must complete at once: its token pair. */
export async function pairFor(server: TestServer, email: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Pair> {
  const res = await loginAs(server, email, extra, headers);
  if (res.status !== 200 || !res.body.access_token) throw new Error(`expected tokens, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Pair;
}

export function isPair(body: LoginAnswer): body is LoginAnswer & Pair {
  return typeof body.access_token === 'string' && typeof body.refresh_token === 'string';
}

/** The six-digit code in a message (new-device, new-IP and factor confirmation mails all say "code is NNNNNN"). */
export function codeIn(mail: ReceivedMail): string {
  const code = /code is (\d{6})/.exec(mail.text)?.[1];
  if (!code) throw new Error(`no code in mail:\n${mail.text}`);
  return code;
}

export function subjectOf(mail: ReceivedMail): string {
  return /^Subject: (.*)$/m.exec(mail.raw)?.[1] ?? '';
}

/** The "This wasn't me" link in a security mail. */
export function reportLinkIn(mail: ReceivedMail): URL {
  const match = /(http:\/\/\S+\/security\/report\?token=[A-Za-z0-9_%-]+)/.exec(mail.text);
  if (!match?.[1]) throw new Error(`no report link in mail:\n${mail.text}`);
  return new URL(match[1]);
}

/** Reads mail to one address in order: `next()` waits for the next one that arrives. */
export function mailbox(smtp: MfaServer['smtp'], address: string) {
  let seen = smtp.messages.filter((m) => m.to.includes(address)).length;
  const mine = () => smtp.messages.filter((m) => m.to.includes(address));
  return {
    async next(timeoutMs = 10_000): Promise<ReceivedMail> {
      const deadline = Date.now() + timeoutMs;
      while (mine().length <= seen) {
        if (Date.now() > deadline) throw new Error(`no new mail to ${address} (had ${seen})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return mine()[seen++]!;
    },
    /** Mail that arrived and was not read yet. */
    unread(): ReceivedMail[] {
      return mine().slice(seen);
    },
    count: () => mine().length,
  };
}

/** A TOTP code of `secret` at the server's time. */
export function totpAt(secret: string, clock: ManualClock): Promise<string> {
  return generate({ secret, epoch: Math.floor(clock().getTime() / 1000) });
}

/** A code that is not `code` (same shape). */
export const wrongCode = (code: string) => (code === '000000' ? '111111' : '000000');

/** Enrols and confirms an authenticator through the API; the clock moves past the step used to confirm. */
export async function enrolTotp(server: TestServer, token: string, clock: ManualClock): Promise<{ factorId: string; secret: string }> {
  const started = await api<{ factor_id: string; secret: string }>(server, 'POST', '/api/auth/mfa/totp/', { token });
  if (started.status !== 201) throw new Error(`totp enrolment: ${started.status} ${JSON.stringify(started.body)}`);
  const confirmed = await api(server, 'POST', `/api/auth/mfa/totp/${started.body.factor_id}/confirm/`, { token, body: { code: await totpAt(started.body.secret, clock) } });
  if (confirmed.status !== 200) throw new Error(`totp confirmation: ${confirmed.status} ${JSON.stringify(confirmed.body)}`);
  clock.advance(30);
  return { factorId: started.body.factor_id, secret: started.body.secret };
}

/** An authenticator enrolled through the services; `totp()` is what it shows now (its confirmation used the previous step). */
export async function enrolTotpFor(server: TestServer, user: UserRow, clock: ManualClock): Promise<() => Promise<string>> {
  const { factors } = server.app.keryu.services;
  const enrolled = await factors.enrollTotp(user);
  const totp = () => totpAt(enrolled.secret, clock);
  await factors.confirm(user, 'totp', enrolled.factor_id, await totp());
  clock.advance(30);
  return totp;
}

/** A user and a first session (with device and IP checks off, or from wherever the caller says). */
export async function seedWithSession(server: TestServer, email: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const user = await seedAuthUser(server, email);
  return { user, pair: await pairFor(server, email, extra, headers) };
}

export async function auditLog(server: TestServer) {
  await server.app.keryu.services.audit.flush();
  return server.app.keryu.database.db.select().from(auditEvents);
}
