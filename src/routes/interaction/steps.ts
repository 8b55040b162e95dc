/**
 * The page of the interaction's current login step, the same page again after a failed action (a wrong
 * code shows the code page with the error, a dead challenge the password page or the ended page), and the
 * end of the login once every step is done. Shared by the password, code and enrolment routes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/index.js';
import type { CompletedLogin, LoginService } from '../../services/login/index.js';
import { OTP_TTL_SECONDS } from '../../services/mfa/codes.js';
import { durationInWords } from '../../lib/duration.js';
import type { Details, InteractionContext } from './context.js';
import {
  challengeGoneOutcome,
  endedView,
  enrollAddressView,
  enrollChoiceView,
  enrollCodeView,
  ENROLMENT_EXPIRED,
  enrollErrorView,
  loginView,
  recoveryCodesView,
  stepErrorOutcome,
  verifyView,
  type EnrolledFactor,
  type EnrollType,
  type PendingStep,
  type StepOutcome,
  type StepView,
} from './views.js';
import { sendPage } from '../../views/page.js';

export type EnrollingUser = Awaited<ReturnType<LoginService['enrollingUser']>>;

export interface InteractionSteps {
  /** The page of the interaction's current login step (the password page when none is open). */
  stepPage(request: FastifyRequest, reply: FastifyReply, details: Details, view?: StepView): Promise<FastifyReply>;
  /** A failed step action, shown on the step's page in plain words with its status. */
  stepError(request: FastifyRequest, reply: FastifyReply, details: Details, err: unknown, view?: StepView): Promise<FastifyReply>;
  /** A failed enrolment action (start or confirmation of a factor), shown on the enrolment page. */
  enrollError(request: FastifyRequest, reply: FastifyReply, details: Details, type: EnrollType, err: unknown, view?: StepView): Promise<FastifyReply>;
  /** The user of the login waiting for enrolment; undefined once the page saying why there is none was sent. */
  enrollingUser(request: FastifyRequest, reply: FastifyReply, details: Details): Promise<EnrollingUser | undefined>;
  /**
   * Every step is done (the login service wrote the sign-in's `login` event): the provider's login result.
   * After a factor was enrolled, the user first gets recovery codes (if they have none): the page shows them
   * once and continues to where the provider would have redirected.
   */
  completeLogin(request: FastifyRequest, reply: FastifyReply, details: Details, completed: CompletedLogin, enrolled?: EnrolledFactor): Promise<FastifyReply>;
}

export function createInteractionSteps(ctx: InteractionContext): InteractionSteps {
  const { deps } = ctx;
  const codeTtl = durationInWords(OTP_TTL_SECONDS);

  async function outcomePage(request: FastifyRequest, reply: FastifyReply, details: Details, err: AppError, outcome: StepOutcome): Promise<FastifyReply> {
    switch (outcome.kind) {
      case 'retry':
        return stepPage(request, reply, details, outcome.view);
      case 'ended':
        return sendPage(reply, endedView(ctx.pageOf(details)));
      case 'restart':
        return sendPage(reply, loginView(ctx.pageOf(details), await ctx.clientName(details), outcome.status, outcome.error));
      case 'rethrow':
        throw err;
    }
  }

  async function stepPage(request: FastifyRequest, reply: FastifyReply, details: Details, view: StepView = {}): Promise<FastifyReply> {
    let step: PendingStep | undefined;
    try {
      step = await deps.login.pendingStep(details.uid, request.requestContext);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return outcomePage(request, reply, details, err, challengeGoneOutcome(err, view.status ?? 200));
    }
    const page = ctx.pageOf(details);
    if (!step) return sendPage(reply, loginView(page, await ctx.clientName(details), view.status ?? 200, view.error));
    if (view.retryAfter !== undefined) reply.header('retry-after', String(view.retryAfter));
    if (step.reason !== 'enroll') return sendPage(reply, verifyView(page, step, view, codeTtl) ?? endedView(page));

    const type = view.enroll && step.methods.includes(view.enroll) ? view.enroll : undefined;
    if (!type) return sendPage(reply, enrollChoiceView(page, step, view));
    let error = view.error;
    if (view.factorId) {
      const pending = (await deps.factors.list(step.user.id)).find((f) => f.id === view.factorId && f.type === type && !f.active);
      if (pending) return sendPage(reply, enrollCodeView(page, type, pending, view, codeTtl));
      error ??= ENROLMENT_EXPIRED;
    }
    return sendPage(reply, enrollAddressView(page, type, { ...view, error }, step.user.email));
  }

  async function stepError(request: FastifyRequest, reply: FastifyReply, details: Details, err: unknown, view: StepView = {}) {
    if (!(err instanceof AppError)) throw err;
    return outcomePage(request, reply, details, err, stepErrorOutcome(err, view));
  }

  return {
    stepPage,
    stepError,
    async enrollError(request, reply, details, type, err, view = {}) {
      if (!(err instanceof AppError)) throw err;
      const shown = enrollErrorView(err, type, view);
      if (shown) return stepPage(request, reply, details, shown);
      return stepError(request, reply, details, err, { ...view, enroll: type === 'totp' ? undefined : type });
    },
    async enrollingUser(request, reply, details) {
      try {
        return await deps.login.enrollingUser({ channel: 'form', interactionUid: details.uid }, request.requestContext);
      } catch (err) {
        await stepError(request, reply, details, err);
        return undefined;
      }
    },
    async completeLogin(request, reply, details, completed, enrolled) {
      const { user, amr } = completed;
      if (!enrolled || (await deps.factors.countUnusedRecoveryCodes(user.id)) > 0) return ctx.finish(request, reply, { login: { accountId: user.id, amr } }, false);
      const codes = await deps.factors.generateRecoveryCodes(user, request.requestContext);
      const location = await deps.host.provider.interactionResult(request.raw, reply.raw, { login: { accountId: user.id, amr } }, { mergeWithLastSubmission: false });
      return sendPage(reply, recoveryCodesView(codes, location, enrolled));
    },
  };
}
