/**
 * Passkeys (WebAuthn, through @simplewebauthn/server): registration for a signed-in user, assertions for a
 * second factor or a passwordless sign-in, and the user's list, rename and remove.
 *
 * Guards, in order, for every ceremony: the challenge in clientDataJSON must be one this server issued
 * (stored as a keyed digest), for this purpose, this user (none for a discoverable sign-in) and this binding
 * (the session, login challenge, interaction or app device that asked for it), unexpired; it is consumed by
 * one conditional UPDATE before the response is checked, so a challenge is good for one try whatever its
 * outcome. Then the library checks type, origin, RP id hash, user presence (and user verification where
 * required) and the signature; attestation is `none` (no authenticator model is trusted or refused).
 * Finally the signature counter must move forward, checked in the statement that stores it.
 * @see https://www.w3.org/TR/webauthn-3/#sctn-verifying-assertion
 */
import { randomUUID } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { decodeClientDataJSON, isoBase64URL, parseAuthenticatorData } from '@simplewebauthn/server/helpers';
import type { Db } from '../../db/client.js';
import { AppError } from '../../errors/index.js';
import { addSeconds, type Clock } from '../../lib/clock.js';
import { constantTimeEqual, hmacDigest, randomToken, type TokenDigest } from '../../lib/crypto.js';
import type { RequestContext } from '../../lib/request-context.js';
import { createMfaQueries } from '../../queries/mfa.js';
import type { UserRow } from '../../queries/users.js';
import { createWebauthnQueries, type PasskeyRow } from '../../queries/webauthn.js';
import type { AuditService } from '../audit.js';
import type { FactorChangeNotifier } from '../mfa/factors.js';

/** A WebAuthn challenge lives as long as a login challenge (WebAuthn §13.4.3 asks for a timeout; 5 minutes). */
export const PASSKEY_CHALLENGE_TTL_SECONDS = 300;

export interface RelyingParty {
  rpId: string;
  rpName: string;
  origins: string[];
}

/**
 * What asked for a challenge; an answer is accepted only for the same one. `session`: a first-party API
 * session adding a passkey; `account`: the account pages (the browser's sign-in, e.g. its OIDC session id);
 * `login`: a login challenge (its row id: the second factor, or enrolment at sign-in); `interaction`: a
 * browser's passwordless sign-in on the login page; `device`: an app's passwordless sign-in (its device_id
 * label, '' without one).
 */
export type PasskeyBinding = { kind: 'session' | 'account' | 'login' | 'interaction' | 'device'; id: string };

/** A passkey as its owner sees it (never the public key). */
export interface PasskeyView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  /** A synced (multi-device) passkey: `swk` in amr; else device-bound: `hwk`. */
  backup_eligible: boolean;
  backed_up: boolean;
  transports: string[];
  aaguid: string;
}

/** A verified assertion: whose passkey, and the RFC 8176 amr values it proves. */
export interface PasskeyAssertion {
  userId: string;
  factorId: string;
  amr: string[];
}

/** Why an assertion was refused (audited by the caller; the client gets one generic answer). */
export type PasskeyFailure =
  | 'malformed'
  | 'unknown_challenge'
  | 'challenge_consumed'
  | 'challenge_expired'
  | 'unknown_credential'
  | 'wrong_user'
  | 'user_not_verified'
  | 'invalid_assertion'
  | 'counter_regressed';

export type PasskeyCheck = ({ ok: true } & PasskeyAssertion) | { ok: false; reason: PasskeyFailure; userId?: string | undefined };

const bindingKey = (binding: PasskeyBinding) => `${binding.kind}:${binding.id}`;

/**
 * RFC 8176 amr of a passkey: `swk` when the key may leave the device (backup eligible: synced by a passkey
 * provider), `hwk` when it is bound to one authenticator; `user` when the authenticator verified the user.
 */
export function passkeyAmr(backupEligible: boolean, userVerified: boolean): string[] {
  return [backupEligible ? 'swk' : 'hwk', ...(userVerified ? ['user'] : [])];
}

const view = (p: PasskeyRow): PasskeyView => ({
  id: p.factorId,
  name: p.name,
  created_at: p.createdAt.toISOString(),
  last_used_at: p.lastUsedAt?.toISOString() ?? null,
  backup_eligible: p.backupEligible,
  backed_up: p.backedUp,
  transports: p.transports,
  aaguid: p.aaguid,
});

export function createPasskeyService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  rp: RelyingParty;
  /** Challenges are stored as this keyed digest. */
  tokenDigest: TokenDigest;
  /** Derives the WebAuthn user handle, so it reveals nothing about the account (WebAuthn §14.6.1). */
  userHandleKey: Buffer;
  notifier: () => FactorChangeNotifier;
}) {
  const queries = createWebauthnQueries(deps.db);
  const { rp } = deps;

  /** The user handle: 32 bytes derived from the user id with a server key; the same for all of a user's passkeys. */
  const userHandleOf = (userId: string) => hmacDigest(deps.userHandleKey, `webauthn-user-handle:${userId}`);

  /** A new challenge, as the bytes the options carry (the library base64url-encodes them, which is what comes back). */
  async function newChallenge(purpose: 'registration' | 'authentication', userId: string | undefined, binding: PasskeyBinding): Promise<Uint8Array<ArrayBuffer>> {
    const challenge = randomToken();
    const now = deps.clock();
    await queries.insertChallenge({ id: randomUUID(), challengeHash: deps.tokenDigest.stored(challenge), purpose, userId: userId ?? null, binding: bindingKey(binding), createdAt: now, expiresAt: addSeconds(now, PASSKEY_CHALLENGE_TTL_SECONDS) });
    return isoBase64URL.toBuffer(challenge);
  }

  /** Finds and consumes the challenge a response answers; the failure when it is not this purpose's, user's and binding's. */
  async function consumeChallenge(clientDataJSON: string, purpose: 'registration' | 'authentication', userId: string | undefined, binding: PasskeyBinding): Promise<{ challenge: string; userId: string | null } | PasskeyFailure> {
    let challenge: string;
    try {
      challenge = decodeClientDataJSON(clientDataJSON).challenge;
    } catch {
      return 'malformed';
    }
    if (typeof challenge !== 'string' || challenge.length > 200) return 'malformed';
    const row = await queries.findChallengeByDigest(deps.tokenDigest.stored(challenge));
    if (!row || row.purpose !== purpose || !constantTimeEqual(row.binding, bindingKey(binding))) return 'unknown_challenge';
    if (userId !== undefined && row.userId !== userId) return 'unknown_challenge';
    if (row.consumedAt) return 'challenge_consumed';
    const now = deps.clock();
    if (row.expiresAt <= now) return 'challenge_expired';
    if (!(await queries.consumeChallenge(row.id, now))) return 'challenge_consumed';
    return { challenge, userId: row.userId };
  }

  async function ownPasskey(userId: string, id: string): Promise<PasskeyRow> {
    const found = /^[0-9a-f-]{36}$/i.test(id) ? await queries.findPasskeyOfUser(userId, id) : undefined;
    if (!found) throw new AppError('not_found', 'no such passkey', 404);
    return found;
  }

  return {
    rp,

    /**
     * Options for `navigator.credentials.create()`, for a user adding a passkey (the caller has checked the
     * recent sign-in or re-authentication). Discoverable credentials are preferred (they can sign in without a
     * password), user verification is preferred; the user's passkeys are excluded (one per authenticator).
     */
    async registrationOptions(user: UserRow, binding: PasskeyBinding): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const existing = await queries.listPasskeysByUser(user.id);
      return generateRegistrationOptions({
        rpName: rp.rpName,
        rpID: rp.rpId,
        userName: user.email,
        userDisplayName: user.name ?? user.email,
        userID: isoBase64URL.toBuffer(userHandleOf(user.id)),
        challenge: await newChallenge('registration', user.id, binding),
        timeout: PASSKEY_CHALLENGE_TTL_SECONDS * 1000,
        attestationType: 'none',
        excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
        extensions: { credProps: true },
      });
    },

    /**
     * Verifies a registration response and stores the passkey as an active factor named `name` (answered with
     * the amr it proved, for a login that enrols it). Refused
     * (400 `invalid_request`): a challenge not issued for this user and binding, used or expired, or a
     * response that does not verify; 409 `conflict`: a credential already registered.
     */
    async verifyRegistration(user: UserRow, binding: PasskeyBinding, response: RegistrationResponseJSON, name: string | undefined, context?: RequestContext): Promise<{ passkey: PasskeyView; amr: string[] }> {
      const refused = async (reason: string) => {
        await deps.audit.record({ type: 'mfa.factor_activated', outcome: 'failure', actor: { type: 'user', id: user.id }, subject: { type: 'user', id: user.id }, context, details: { type: 'webauthn', reason } });
        return new AppError('invalid_request', 'the passkey could not be registered; ask for new options and try again', 400, { reason });
      };
      const consumed = await consumeChallenge(response.response.clientDataJSON, 'registration', user.id, binding);
      if (typeof consumed === 'string') throw await refused(consumed);
      let verified;
      try {
        verified = await verifyRegistrationResponse({ response, expectedChallenge: consumed.challenge, expectedOrigin: rp.origins, expectedRPID: rp.rpId, requireUserVerification: false });
      } catch {
        throw await refused('invalid_attestation');
      }
      if (!verified.verified) throw await refused('invalid_attestation');
      const info = verified.registrationInfo;
      if (await queries.credentialIdExists(info.credential.id)) throw new AppError('conflict', 'this passkey is already registered', 409);
      const now = deps.clock();
      const factorId = randomUUID();
      const label = name ?? `Passkey ${now.toISOString().slice(0, 10)}`;
      await deps.db.transaction(async (tx) => {
        const mfa = createMfaQueries(tx);
        await mfa.insertFactor({ id: factorId, userId: user.id, type: 'webauthn', label, createdAt: now, confirmedAt: now });
        await createWebauthnQueries(tx).insertCredential({
          factorId,
          userId: user.id,
          credentialId: info.credential.id,
          publicKey: isoBase64URL.fromBuffer(info.credential.publicKey),
          signCount: info.credential.counter,
          transports: info.credential.transports ?? [],
          backupEligible: info.credentialDeviceType === 'multiDevice',
          backedUp: info.credentialBackedUp,
          aaguid: info.aaguid,
          userVerified: info.userVerified,
          createdAt: now,
        });
        // The first real factor becomes the preferred one (as for the other factors).
        const active = await mfa.listActiveFactorsByUser(user.id);
        if (!active.some((f) => f.preferred && f.type !== 'recovery_code')) await mfa.setPreferredFactor(user.id, factorId);
      });
      await deps.audit.record({ type: 'mfa.factor_activated', outcome: 'success', actor: { type: 'user', id: user.id }, subject: { type: 'user', id: user.id }, context, details: { factor_id: factorId, type: 'webauthn', backup_eligible: info.credentialDeviceType === 'multiDevice', user_verified: info.userVerified, aaguid: info.aaguid } });
      await deps.notifier().factorChanged(user, { action: 'added', type: 'webauthn', factorId }, context);
      return { passkey: view(await ownPasskey(user.id, factorId)), amr: passkeyAmr(info.credentialDeviceType === 'multiDevice', info.userVerified) };
    },

    /**
     * Options for `navigator.credentials.get()`. With `user` (a second factor): that user's passkeys are
     * allowed. Without (a passwordless sign-in): no list, the authenticator offers its discoverable
     * credentials, and user verification is required.
     */
    async authenticationOptions(input: { user?: UserRow | undefined; binding: PasskeyBinding }): Promise<PublicKeyCredentialRequestOptionsJSON> {
      const allow = input.user ? (await queries.listPasskeysByUser(input.user.id)).map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransport[] })) : undefined;
      return generateAuthenticationOptions({
        rpID: rp.rpId,
        challenge: await newChallenge('authentication', input.user?.id, input.binding),
        timeout: PASSKEY_CHALLENGE_TTL_SECONDS * 1000,
        allowCredentials: allow,
        userVerification: input.user ? 'preferred' : 'required',
      });
    },

    /**
     * Checks an assertion. `userId`: the user the challenge was made for (second factor), else a discoverable
     * sign-in, which needs user verification and the user handle of the passkey's owner. A counter that went
     * backwards (when the authenticator keeps one) is refused and audited as a possible clone.
     */
    async verifyAuthentication(input: { response: AuthenticationResponseJSON; binding: PasskeyBinding; userId?: string | undefined }, context?: RequestContext): Promise<PasskeyCheck> {
      const { response } = input;
      const passwordless = input.userId === undefined;
      const consumed = await consumeChallenge(response.response.clientDataJSON, 'authentication', input.userId, input.binding);
      if (typeof consumed === 'string') return { ok: false, reason: consumed };
      const passkey = typeof response.id === 'string' && response.id.length <= 1400 ? await queries.findPasskeyByCredentialId(response.id) : undefined;
      if (!passkey) return { ok: false, reason: 'unknown_credential' };
      const fail = (reason: PasskeyFailure): PasskeyCheck => ({ ok: false, reason, userId: passkey.userId });
      if (consumed.userId !== null && consumed.userId !== passkey.userId) return fail('wrong_user');
      if (passwordless && !(typeof response.response.userHandle === 'string' && constantTimeEqual(response.response.userHandle, userHandleOf(passkey.userId)))) return fail('wrong_user');
      let uv: boolean;
      try {
        uv = parseAuthenticatorData(isoBase64URL.toBuffer(response.response.authenticatorData)).flags.uv;
      } catch {
        return fail('malformed');
      }
      if (passwordless && !uv) return fail('user_not_verified');
      let verified;
      try {
        verified = await verifyAuthenticationResponse({
          response,
          expectedChallenge: consumed.challenge,
          expectedOrigin: rp.origins,
          expectedRPID: rp.rpId,
          // The counter is compared below, in the statement that stores it (and only after the signature verified).
          credential: { id: passkey.credentialId, publicKey: isoBase64URL.toBuffer(passkey.publicKey), counter: 0, transports: passkey.transports as AuthenticatorTransport[] },
          requireUserVerification: passwordless,
        });
      } catch {
        return fail('invalid_assertion');
      }
      if (!verified.verified) return fail('invalid_assertion');
      const { newCounter, credentialBackedUp, userVerified } = verified.authenticationInfo;
      if (!(await queries.recordAssertion(passkey.id, newCounter, credentialBackedUp, deps.clock()))) {
        await deps.audit.record({
          type: 'mfa.passkey_counter_regressed',
          outcome: 'failure',
          actor: { type: 'anonymous' },
          subject: { type: 'user', id: passkey.userId },
          context,
          details: { factor_id: passkey.factorId, stored_counter: passkey.signCount, presented_counter: newCounter },
        });
        return fail('counter_regressed');
      }
      return { ok: true, userId: passkey.userId, factorId: passkey.factorId, amr: passkeyAmr(passkey.backupEligible, userVerified) };
    },

    /** The user a credential id belongs to (to count a sign-in attempt against them before it is checked). */
    async ownerOf(credentialId: string): Promise<string | undefined> {
      if (credentialId.length > 1400) return undefined;
      return (await queries.findPasskeyByCredentialId(credentialId))?.userId;
    },

    async list(userId: string): Promise<PasskeyView[]> {
      return (await queries.listPasskeysByUser(userId)).map(view);
    },

    /** Another user's passkey id answers 404 and changes nothing. */
    async rename(user: UserRow, id: string, name: string, context?: RequestContext): Promise<PasskeyView> {
      const passkey = await ownPasskey(user.id, id);
      if (!(await queries.renamePasskey(user.id, passkey.factorId, name))) throw new AppError('not_found', 'no such passkey', 404);
      await deps.audit.record({ type: 'mfa.factor_updated', outcome: 'success', actor: { type: 'user', id: user.id }, subject: { type: 'user', id: user.id }, context, details: { factor_id: passkey.factorId, type: 'webauthn', renamed: true } });
      return view({ ...passkey, name });
    },

    /** The passkey's factor id when it is the user's (for removal through the factor service); 404 otherwise. */
    async assertOwned(userId: string, id: string): Promise<string> {
      return (await ownPasskey(userId, id)).factorId;
    },
  };
}
export type PasskeyService = ReturnType<typeof createPasskeyService>;
