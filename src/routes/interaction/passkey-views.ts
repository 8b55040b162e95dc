/**
 * The passkey parts of the interaction's pages: the login page's "Sign in with a passkey" form (and its
 * autofill on the email field), the code step's passkey method, the passkey choice at enrolment, and what a
 * refused passkey says. Every one of them carries the pages' one script (views/passkey-script.ts); without
 * JavaScript or WebAuthn its passkey parts stay hidden and the rest of the page works as before.
 */
import type { AppError } from '../../errors/index.js';
import type { PageView } from '../../views/page.js';
import { passkeyScript } from '../../views/passkey-script.js';
import { PASSKEY_METHOD } from '../../services/passkeys/method.js';
import type { InteractionPageContext, PendingStep, StepView } from './views.js';

export { PASSKEY_METHOD } from '../../services/passkeys/method.js';

export const PASSKEY_NOT_ACCEPTED = 'That passkey could not sign you in. Try again, or use your email and password.';

const path = (page: InteractionPageContext, rest = '') => `/interaction/${page.uid}${rest}`;

/** What the templates need for a passkey form of this interaction (its options URL and where it posts). */
export function passkeyForm(page: InteractionPageContext) {
  return { action: path(page, '/passkey'), optionsAction: path(page, '/passkey/options'), script: passkeyScript };
}

/** The code step's passkey method: one button, and the other methods as links. */
export function passkeyStepView(page: InteractionPageContext, step: PendingStep, view: StepView, otherMethods: Array<{ href: string; label: string }>): PageView {
  const title = step.reason === 'mfa' ? 'Two-step verification' : "Confirm it's you";
  const lines: string[] = [];
  if (step.reason === 'new_device') lines.push("We don't recognize this device. To keep your account safe, confirm it's you.");
  if (step.reason === 'new_ip') lines.push("You're signing in from a network we haven't seen before. To keep your account safe, confirm it's you.");
  lines.push('Use your passkey: this device\'s screen lock, fingerprint or face, or your security key.');
  const form = passkeyForm(page);
  return {
    status: view.status ?? 200,
    template: 'mfa-passkey',
    scripts: true,
    model: {
      title,
      heading: title,
      lines,
      error: view.error,
      unavailable: otherMethods.length ? 'This browser cannot use a passkey here. Choose another way below.' : 'This browser cannot use a passkey here. Try another browser, or go back to the application.',
      ceremony: 'authenticate',
      button: 'Use your passkey',
      action: form.action,
      optionsAction: form.optionsAction,
      csrf: page.csrf,
      links: otherMethods,
      abortAction: path(page, '/abort'),
      script: form.script,
    },
  };
}

/**
 * A refused passkey at a step (the assertion did not verify: another challenge, a forged signature, user
 * verification missing, a counter going backwards): the step page again with the tries left, or undefined
 * when it is not such an error (handled like any failed step).
 */
export function passkeyStepError(err: AppError, view: StepView): StepView | undefined {
  if (err.code !== 'invalid_code' && err.code !== 'invalid_credentials') return undefined;
  const left = typeof err.extra.attempts_left === 'number' ? err.extra.attempts_left : undefined;
  if (left === 0) return undefined;
  const tries = left === undefined ? '' : left === 1 ? ' You have 1 more try.' : ` You have ${left} more tries.`;
  return { ...view, method: PASSKEY_METHOD, status: 401, error: `That passkey was not accepted.${tries}` };
}
