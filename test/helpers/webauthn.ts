/**
 * A software authenticator for the passkey API tests: a P-256 key from node:crypto, attestation `none`,
 * authenticator data, a COSE key and clientDataJSON built byte by byte as WebAuthn §6.1 and §6.5 lay them
 * out (CBOR through @simplewebauthn/server's own encoder), and assertions signed over
 * authenticatorData ‖ SHA-256(clientDataJSON). Every field a hostile test needs to bend can be overridden.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const b64url = (b: Uint8Array | Buffer) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | Buffer | string) => createHash('sha256').update(b).digest();

/** Authenticator data flags (WebAuthn §6.1). */
const FLAG = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;

export interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string };
  excludeCredentials?: Array<{ id: string }>;
}
export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: Array<{ id: string }>;
  userVerification?: string;
}

/** What a test can bend in a ceremony. */
export interface CeremonyOverrides {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  /** User verification (default: the authenticator's). */
  uv?: boolean;
  /** The signature counter to report (default: one more than the last). */
  counter?: number;
  /** Flip a bit of the signature (like CDP's setResponseOverrideBits bogusSignature). */
  bogusSignature?: boolean;
  /** The user handle to send (default: the one registered; null sends none). */
  userHandle?: string | null;
}

export class SoftAuthenticator {
  readonly credentialId = randomBytes(32);
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private counter: number;
  /** The user handle from the registration options (a discoverable credential keeps it). */
  userHandle: string | undefined;
  readonly aaguid = Buffer.alloc(16);

  constructor(readonly options: { origin: string; uv?: boolean; backupEligible?: boolean; backedUp?: boolean; counter?: number } ) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey;
    this.counter = options.counter ?? 0;
  }

  get id(): string {
    return b64url(this.credentialId);
  }

  /** The COSE_Key of the public key (EC2, ES256, P-256; RFC 9053 §7.1). */
  private coseKey(): Uint8Array {
    const jwk = this.publicKey.export({ format: 'jwk' });
    return isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x!, 'base64url')],
        [-3, Buffer.from(jwk.y!, 'base64url')],
      ]),
    );
  }

  private flags(o: CeremonyOverrides, attested: boolean): number {
    let f = FLAG.UP;
    if (o.uv ?? this.options.uv ?? true) f |= FLAG.UV;
    if (this.options.backupEligible) f |= FLAG.BE;
    if (this.options.backupEligible && this.options.backedUp) f |= FLAG.BS;
    if (attested) f |= FLAG.AT;
    return f;
  }

  private authData(rpId: string, flags: number, counter: number, attested?: Uint8Array): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** navigator.credentials.create() for these options: a RegistrationResponseJSON. */
  register(options: CreationOptions, o: CeremonyOverrides = {}) {
    const rpId = o.rpId ?? options.rp.id ?? new URL(this.options.origin).hostname;
    this.userHandle = options.user.id;
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const attested = Buffer.concat([this.aaguid, idLength, this.credentialId, this.coseKey()]);
    const authData = this.authData(rpId, this.flags(o, true), o.counter ?? this.counter, attested);
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]) as never);
    const clientDataJSON = this.clientData(o.type ?? 'webauthn.create', o.challenge ?? options.challenge, o.origin ?? this.options.origin);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['internal' as const] },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: { credProps: { rk: true } },
    };
  }

  /** navigator.credentials.get() for these options: an AuthenticationResponseJSON (the counter moves on). */
  assert(options: RequestOptions, o: CeremonyOverrides = {}) {
    const rpId = o.rpId ?? options.rpId ?? new URL(this.options.origin).hostname;
    const counter = o.counter ?? (this.counter === 0 && this.options.counter === undefined ? 0 : this.counter + 1);
    if (o.counter === undefined && counter > 0) this.counter = counter;
    const authData = this.authData(rpId, this.flags(o, false), counter);
    const clientDataJSON = this.clientData(o.type ?? 'webauthn.get', o.challenge ?? options.challenge, o.origin ?? this.options.origin);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), this.privateKey);
    if (o.bogusSignature) signature[signature.length - 1]! ^= 0x01;
    const userHandle = o.userHandle === null ? undefined : (o.userHandle ?? this.userHandle);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      response: { clientDataJSON: b64url(clientDataJSON), authenticatorData: b64url(authData), signature: b64url(signature), ...(userHandle ? { userHandle } : {}) },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    };
  }
}

type Api = typeof import('./auth.js').api;
type Server = { origin: string };

/** Registers a passkey for a session through the API; answers the registered passkey's view. */
export async function registerPasskey(api: Api, server: Server, token: string, authenticator: SoftAuthenticator, name?: string) {
  const options = await api<CreationOptions>(server, 'POST', '/api/auth/mfa/webauthn/options/', { token });
  if (options.status !== 200) throw new Error(`registration options: ${options.status} ${JSON.stringify(options.body)}`);
  const registered = await api<{ id: string; name: string }>(server, 'POST', '/api/auth/mfa/webauthn/', { token, body: { response: authenticator.register(options.body), ...(name ? { name } : {}) } });
  if (registered.status !== 201) throw new Error(`registration: ${registered.status} ${JSON.stringify(registered.body)}`);
  return registered.body;
}

/** Options for a passwordless sign-in (or, with `challenge_id`, a pending login's step). */
export async function loginOptions(api: Api, server: Server, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const options = await api<RequestOptions>(server, 'POST', '/api/auth/login/webauthn/options/', { body, headers });
  if (options.status !== 200) throw new Error(`login options: ${options.status} ${JSON.stringify(options.body)}`);
  return options.body;
}
