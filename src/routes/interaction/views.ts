/**
 * The interaction's pages as view models: which template, what it says, which forms it carries. Pure
 * functions of what the handlers know (the interaction uid, its CSRF token, the pending step), so the copy
 * lives in one place and the handlers only choose a page. Also the mapping from an error code of the login
 * or factor service to what the step page says about it.
 */
import { AppError } from '../../errors/index.js';
import type { LoginService } from '../../services/login/index.js';
import { describeScope, isApiScope } from '../../services/api-scopes.js';
import { messagePage as message, type PageView } from '../../views/page.js';
import { PASSKEY_METHOD, passkeyForm, passkeyStepView } from './passkey-views.js';

export type PendingStep = NonNullable<Awaited<ReturnType<LoginService['pendingStep']>>>;
export type EnrollType = 'totp' | 'sms' | 'email';
/** A factor enrolled at sign-in (a passkey's enrolment is its own route: passkey.ts). */
export type EnrolledFactor = EnrollType | 'webauthn';
export type CodeMethod = 'sms' | 'email';

/** What a step page shows besides the step itself: the method asked for, an error, and its status. */
export interface StepView {
  status?: number | undefined;
  error?: string | undefined;
  method?: string | undefined;
  enroll?: CodeMethod | undefined;
  factorId?: string | undefined;
  sent?: boolean | undefined;
  retryAfter?: number | undefined;
  /** The address the user typed, kept when the address page is shown again with an error. */
  value?: string | undefined;
}

/** The interaction a page belongs to: where its forms post, and the CSRF token they carry. */
export interface InteractionPageContext {
  uid: string;
  csrf: string;
}

export const GENERIC_LOGIN_ERROR = 'The email or password is incorrect.';
const EXPIRED_STEP = 'This sign-in took too long and has expired. Enter your password again.';
const ENDED_STEP = 'This sign-in can no longer continue. Enter your password again.';
const CHALLENGE_GONE = new Set(['challenge_expired', 'challenge_consumed', 'invalid_challenge']);

const tries = (left: number) => (left === 1 ? 'You have 1 more try.' : `You have ${left} more tries.`);
export const isCodeMethod = (method: string): method is CodeMethod => method === 'sms' || method === 'email';
const path = (page: InteractionPageContext, rest = '') => `/interaction/${page.uid}${rest}`;

export const expiredView = (): PageView => message(400, 'Sign-in expired', ['Go back to the application and start again.'], 'This sign-in has expired');
export const refusedView = (): PageView => message(403, 'Request refused', ['The form was not valid. Go back and try again.']);
export const notFoundView = (): PageView => message(404, 'Not found', ['Go back and try again.'], 'Page not found');
export const passwordResetRequiredView = (): PageView =>
  message(
    403,
    'Password reset required',
    ['This account must get a new password before anyone can sign in to it again.', 'Reset your password, then sign in with the new one.'],
    'Reset your password to sign in',
  );

export function loginView(page: InteractionPageContext, clientName: string, status = 200, error?: string, email?: string): PageView {
  return {
    status,
    template: 'login',
    scripts: true,
    model: { title: 'Sign in', clientName, action: path(page, '/login'), abortAction: path(page, '/abort'), csrf: page.csrf, error, email, passkey: passkeyForm(page) },
  };
}

/** Too many wrong codes: the challenge is dead; the way on is back to the application. */
export function endedView(page: InteractionPageContext): PageView {
  return {
    status: 429,
    template: 'mfa-ended',
    model: {
      title: 'Sign-in ended',
      heading: 'Too many wrong codes',
      lines: ['For your security, this sign-in has ended.', 'Go back to the application and start again.'],
      abortAction: path(page, '/abort'),
      csrf: page.csrf,
    },
  };
}

/** The application asking for consent, as its registration describes it (RFC 7591 §2 metadata). */
export interface ConsentClient {
  name: string;
  logoUri?: string | undefined;
  policyUri?: string | undefined;
  tosUri?: string | undefined;
}

/**
 * The consent page: what each scope gives the application, in plain words, and who the application is (its
 * name, logo, privacy policy and terms when registered). A scope of a resource other than the built-in API
 * is shown with the resource it is for. The logo's origin, and only it, is added to the page's `img-src`.
 */
export function consentView(page: InteractionPageContext, client: ConsentClient, oidcScopes: string[], resourceScopes: Record<string, string[]>): PageView {
  const resources = Object.entries(resourceScopes).flatMap(([resource, scopes]) => scopes.map((scope) => (isApiScope(scope) ? describeScope(scope) : `On ${resource}: ${describeScope(scope)}`)));
  const words = [...new Set([...(oidcScopes.length ? oidcScopes : ['openid']).map(describeScope), ...resources])];
  const logo = client.logoUri ? URL.parse(client.logoUri) : null;
  return {
    status: 200,
    template: 'consent',
    model: {
      title: 'Allow access',
      clientName: client.name,
      logo: logo?.href,
      policyUri: client.policyUri,
      tosUri: client.tosUri,
      scopes: words,
      action: path(page, '/confirm'),
      abortAction: path(page, '/abort'),
      csrf: page.csrf,
    },
    imageOrigins: logo ? [logo.origin] : undefined,
  };
}

export function recoveryCodesView(codes: string[], continueHref: string, enrolled: EnrolledFactor): PageView {
  const factorName = enrolled === 'totp' ? 'authenticator app' : enrolled === 'sms' ? 'phone' : enrolled === 'webauthn' ? 'passkey' : 'email access';
  return { status: 200, template: 'mfa-recovery-codes', model: { title: 'Save your recovery codes', codes, continueHref, factorName } };
}

/** The code page of a second factor or of a new device/network check. Undefined: no method is left. */
export function verifyView(page: InteractionPageContext, step: PendingStep, view: StepView, codeTtl: string): PageView | undefined {
  const { reason, methods, firstMethod: first } = step;
  const method = view.method && methods.includes(view.method) ? view.method : first;
  if (!method) return undefined;
  const to = (m: CodeMethod) => step.destinations[m] ?? '';
  const switchLabel = (m: string) =>
    m === PASSKEY_METHOD ? 'Use a passkey' : m === 'totp' ? 'Use your authenticator app' : m === 'recovery_code' ? 'Use a recovery code' : m === 'sms' ? `Get a code by text message (${to(m)})` : `Get a code by email (${to('email')})`;
  const links = methods.filter((m) => m !== method).map((m) => ({ href: path(page, `?method=${encodeURIComponent(m)}`), label: switchLabel(m) }));
  if (method === PASSKEY_METHOD) return passkeyStepView(page, step, view, links);

  const lines: string[] = [];
  if (reason === 'new_device') lines.push("We don't recognize this device. To keep your account safe, confirm it's you.");
  if (reason === 'new_ip') lines.push("You're signing in from a network we haven't seen before. To keep your account safe, confirm it's you.");
  const forms: Array<{ action: string; label: string; fields: Array<{ name: string; value: string }> }> = [];
  if (method === 'totp') lines.push('Enter the 6-digit code from your authenticator app.');
  else if (method === 'recovery_code') lines.push('Enter one of the recovery codes you saved when you set up two-step verification. Each code works once.');
  else if (isCodeMethod(method)) {
    const sent = view.sent === true || method === first;
    lines.push(sent ? `We sent a code to ${to(method)}. It expires in ${codeTtl}.` : `We can send a code to ${to(method)}. Choose "Send a code", then enter it here.`);
    forms.push({ action: path(page, '/resend'), label: sent ? 'Send a new code' : 'Send a code', fields: [{ name: 'method', value: method }] });
  }
  const title = reason === 'mfa' ? 'Two-step verification' : "Confirm it's you";
  return {
    status: view.status ?? 200,
    template: 'mfa-code',
    model: {
      title,
      heading: title,
      lines,
      error: view.error,
      action: path(page, '/verify'),
      csrf: page.csrf,
      hidden: [{ name: 'method', value: method }],
      numeric: method !== 'recovery_code',
      forms,
      links,
      abortAction: path(page, '/abort'),
    },
  };
}

/** The choice of a factor to enrol. */
export function enrollChoiceView(page: InteractionPageContext, step: PendingStep, view: StepView): PageView {
  return {
    status: view.status ?? 200,
    template: 'mfa-enroll',
    scripts: step.methods.includes(PASSKEY_METHOD),
    model: {
      passkey: step.methods.includes(PASSKEY_METHOD) ? passkeyForm(page) : undefined,
      title: 'Set up two-step verification',
      csrf: page.csrf,
      abortAction: path(page, '/abort'),
      chooseHref: path(page),
      methods: step.methods,
      error: view.error,
      totpAction: path(page, '/enroll/totp'),
      pageAction: path(page),
    },
  };
}

/** The code sent to a phone number or address being enrolled. */
export function enrollCodeView(page: InteractionPageContext, type: CodeMethod, pending: { id: string; label: string }, view: StepView, codeTtl: string): PageView {
  return {
    status: view.status ?? 200,
    template: 'mfa-code',
    model: {
      title: 'Enter the code',
      heading: 'Enter the code',
      lines: [`We sent a code to ${pending.label}. It expires in ${codeTtl}.`],
      error: view.error,
      action: path(page, `/enroll/${type}/confirm`),
      csrf: page.csrf,
      hidden: [{ name: 'factor_id', value: pending.id }],
      numeric: true,
      forms: [],
      links: [
        { href: path(page, `?enroll=${type}`), label: type === 'sms' ? 'Use another number, or get a new code' : 'Use another address, or get a new code' },
        { href: path(page), label: 'Choose another method' },
      ],
      abortAction: path(page, '/abort'),
    },
  };
}

export const ENROLMENT_EXPIRED = 'That setup has expired. Start again.';

/** The phone number or address to enrol (typed again after an error). */
export function enrollAddressView(page: InteractionPageContext, type: CodeMethod, view: StepView, accountEmail: string): PageView {
  const sms = type === 'sms';
  return {
    status: view.status ?? 200,
    template: 'mfa-enroll-address',
    model: {
      title: sms ? 'Get codes by text message' : 'Get codes by email',
      heading: sms ? 'Get codes by text message' : 'Get codes by email',
      intro: sms
        ? 'Enter your mobile number with its country code, such as +14155552671. We will text it a code to check it.'
        : 'Codes will go to this address. We will send it a code to check it.',
      csrf: page.csrf,
      abortAction: path(page, '/abort'),
      chooseHref: path(page),
      error: view.error,
      action: path(page, `/enroll/${type}`),
      label: sms ? 'Phone number' : 'Email address',
      name: sms ? 'phone' : 'email',
      inputType: sms ? 'tel' : 'email',
      autocomplete: sms ? 'tel' : 'email',
      maxLength: sms ? 32 : 254,
      value: view.value ?? (sms ? undefined : accountEmail),
    },
  };
}

/** The QR code and setup key of a new TOTP factor: the one page that ever shows the secret. */
export function totpView(page: InteractionPageContext, enrolled: { factor_id: string; secret: string; qr_code: string }): PageView {
  return {
    status: 200,
    template: 'mfa-enroll-totp',
    model: {
      title: 'Set up your authenticator app',
      secret: enrolled.secret,
      qrCode: enrolled.qr_code,
      factorId: enrolled.factor_id,
      action: path(page, '/enroll/totp/confirm'),
      csrf: page.csrf,
      chooseHref: path(page),
      abortAction: path(page, '/abort'),
    },
  };
}

export const TOTP_WRONG_CODE = 'That code is not correct. Enter the code the app shows now, or show a new QR code and add the account again.';

/** A wrong TOTP confirmation: the code form again (without the secret, which only its own page shows). */
export function totpRetryView(page: InteractionPageContext, factorId: string, status: number, error: string): PageView {
  return {
    status,
    template: 'mfa-code',
    model: {
      title: 'Set up your authenticator app',
      heading: 'Set up your authenticator app',
      lines: ['Enter the 6-digit code your authenticator app shows for this account.'],
      error,
      action: path(page, '/enroll/totp/confirm'),
      csrf: page.csrf,
      hidden: [{ name: 'factor_id', value: factorId }],
      numeric: true,
      forms: [{ action: path(page, '/enroll/totp'), label: 'Show a new QR code', fields: [] }],
      links: [{ href: path(page), label: 'Choose another method' }],
      abortAction: path(page, '/abort'),
    },
  };
}

/**
 * What a failed step action shows: the step page again with a message (`retry`), the ended page, the
 * password page to start over (`restart`, the challenge is gone), or nothing known (`rethrow`).
 */
export type StepOutcome =
  | { kind: 'retry'; view: StepView }
  | { kind: 'ended' }
  | { kind: 'restart'; status: number; error: string }
  | { kind: 'rethrow' };

/** A challenge that can no longer be used: the ended page, or the password page to start over. */
export function challengeGoneOutcome(err: AppError, status: number): StepOutcome {
  if (err.code === 'too_many_attempts') return { kind: 'ended' };
  if (CHALLENGE_GONE.has(err.code)) return { kind: 'restart', status, error: err.code === 'challenge_expired' ? EXPIRED_STEP : ENDED_STEP };
  return { kind: 'rethrow' };
}

/** A failed code step (verify or resend) in plain words, with its status. */
export function stepErrorOutcome(err: AppError, view: StepView): StepOutcome {
  switch (err.code) {
    case 'invalid_code': {
      const left = Number(err.extra.attempts_left ?? 0);
      if (left <= 0) return { kind: 'ended' };
      return { kind: 'retry', view: { ...view, status: 401, error: `That code is not correct. ${tries(left)}` } };
    }
    case 'method_not_allowed':
      return { kind: 'retry', view: { ...view, method: undefined, status: 400, error: 'That way of confirming is not available for this sign-in. Use one of the options on this page.' } };
    case 'too_many_requests': {
      const wait = Number(err.extra.retry_after ?? 60);
      return { kind: 'retry', view: { ...view, status: 429, retryAfter: wait, error: `Too many codes were sent. Wait ${wait} seconds before asking for a new one.` } };
    }
    default:
      return challengeGoneOutcome(err, 400);
  }
}

/**
 * A failed enrolment action (start or confirmation of a factor), shown on the enrolment page. Undefined:
 * not an enrolment error; it is handled like any failed step.
 */
export function enrollErrorView(err: AppError, type: EnrollType, view: StepView): StepView | undefined {
  const enroll = type === 'totp' ? undefined : type;
  switch (err.code) {
    case 'invalid_request':
      return { ...view, enroll, status: 400, error: type === 'sms' ? 'Enter a valid mobile number with its country code, such as +14155552671.' : 'Enter a valid email address.' };
    case 'conflict':
      return { ...view, enroll, factorId: undefined, status: 409, error: type === 'sms' ? 'This number is already set up. Use another one.' : type === 'email' ? 'This address is already set up. Use another one.' : 'This method is already set up.' };
    case 'invalid_code': {
      const left = typeof err.extra.attempts_left === 'number' ? err.extra.attempts_left : undefined;
      if (left === 0) return { ...view, enroll, factorId: undefined, status: 401, error: 'Too many wrong codes. Ask for a new code.' };
      return { ...view, enroll, status: 401, error: `That code is not correct.${left === undefined ? '' : ` ${tries(left)}`}` };
    }
    case 'not_found':
      return { ...view, enroll, factorId: undefined, status: 400, error: ENROLMENT_EXPIRED };
    case 'challenge_expired':
      // The enrolment code (not the login) expired.
      return { ...view, enroll, factorId: undefined, status: 400, error: 'That code has expired. Ask for a new one.' };
    case 'too_many_attempts':
      return { ...view, enroll, factorId: undefined, status: 429, error: 'Too many wrong codes. Ask for a new code.' };
    default:
      return undefined;
  }
}

/** Too many password attempts, or codes, or a reset required: what the password page says, if anything. */
export function passwordErrorOutcome(err: AppError): { status: number; error: string; retryAfter?: number } | 'reset_required' | undefined {
  if (err.code === 'too_many_attempts') {
    const wait = Number(err.extra.retry_after ?? 60);
    return { status: 429, retryAfter: wait, error: `Too many failed attempts. Try again in ${wait} seconds.` };
  }
  if (err.code === 'too_many_requests') {
    // The password was right, but the first code of the next step could not be sent yet.
    const wait = Number(err.extra.retry_after ?? 60);
    return { status: 429, retryAfter: wait, error: `Too many codes were sent to this account. Wait ${wait} seconds, then sign in again.` };
  }
  if (err.code === 'invalid_credentials') return { status: 401, error: GENERIC_LOGIN_ERROR };
  if (err.code === 'password_reset_required') return 'reset_required';
  return undefined;
}
