/**
 * The password policy of NIST SP 800-63B §3.1.1.2: a minimum length (configurable, at least 8, default 10),
 * at most 256 characters, compared after Unicode NFKC normalization, and no composition rules; instead a
 * new password is refused when a strength estimator (zxcvbn-ts, with the common and English dictionaries
 * and the user's own email and name as context) rates it weak or common. Applied wherever a password is
 * set: CLI, bootstrap, reset and change.
 * @see https://pages.nist.gov/800-63-4/sp800-63b.html
 */
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';
import { AppError } from '../errors/index.js';

export const PASSWORD_MAX_LENGTH = 256;

export interface PasswordPolicy {
  /** Throws AppError `weak_password` (400) naming the problem; returns the normalized password. */
  check(password: string, context?: { email?: string | undefined; name?: string | null | undefined }): Promise<string>;
}

export function createPasswordPolicy(options: { minLength: number; minScore: number }): PasswordPolicy {
  // Loading the dictionaries takes a few hundred milliseconds: do it once, on first use.
  let factory: ZxcvbnFactory | undefined;
  const estimator = () =>
    (factory ??= new ZxcvbnFactory({
      dictionary: { ...common.dictionary, ...en.dictionary },
      graphs: common.adjacencyGraphs,
      translations: en.translations,
    }));

  return {
    async check(password, context = {}) {
      const normalized = password.normalize('NFKC');
      const length = [...normalized].length;
      if (length < options.minLength) throw new AppError('weak_password', `the password must be at least ${options.minLength} characters`, 400);
      if (length > PASSWORD_MAX_LENGTH) throw new AppError('weak_password', `the password must be at most ${PASSWORD_MAX_LENGTH} characters`, 400);
      const inputs = [context.email, context.email?.split('@')[0], context.name ?? undefined].filter((v): v is string => Boolean(v));
      const result = await estimator().checkAsync(normalized, inputs);
      if (result.score < options.minScore) {
        const hint = result.feedback.warning ?? result.feedback.suggestions[0];
        throw new AppError('weak_password', `the password is too easy to guess${hint ? `: ${hint}` : ''}`, 400);
      }
      return normalized;
    },
  };
}
