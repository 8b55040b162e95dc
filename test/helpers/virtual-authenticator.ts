/**
 * A passkey authenticator inside headless Chromium: the DevTools Protocol's WebAuthn domain adds a virtual
 * CTAP2 platform authenticator to one page's browser context, so the page's real `navigator.credentials`
 * calls create and use credentials without any UI. Tests also make it misbehave: user verification failing
 * (`setUserVerified`), or a response whose signature, UV or UP bit is forged after the fact
 * (`setResponseOverrideBits`), which is what a server must catch.
 *
 * WebAuthn needs a secure context and a registrable domain as RP id: tests open the issuer at
 * http://localhost:<port> (browsers treat localhost as secure; an IP address cannot be an RP id).
 */
import type { CDPSession, Page } from 'playwright-core';

export interface VirtualAuthenticatorOptions {
  /** Discoverable credentials (passkeys that sign in without an email). Default true. */
  hasResidentKey?: boolean;
  /** Whether it can verify the user (a PIN or biometric). Default true. */
  hasUserVerification?: boolean;
  /** Whether that verification succeeds. Default true. */
  isUserVerified?: boolean;
}

export interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  userHandle?: string;
  signCount: number;
}

export interface VirtualAuthenticator {
  id: string;
  cdp: CDPSession;
  setUserVerified(verified: boolean): Promise<void>;
  /** Forges the next responses (until reset with `{}`): a zeroed signature, or the UV / UP flag flipped. */
  overrideResponseBits(bits: { isBogusSignature?: boolean; isBadUV?: boolean; isBadUP?: boolean }): Promise<void>;
  credentials(): Promise<VirtualCredential[]>;
  remove(): Promise<void>;
}

export async function addVirtualAuthenticator(page: Page, options: VirtualAuthenticatorOptions = {}): Promise<VirtualAuthenticator> {
  const cdp = await page.context().newCDPSession(page);
  // enableUI false: no account chooser; with several credentials the authenticator picks the newest.
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId: id } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: options.hasResidentKey ?? true,
      hasUserVerification: options.hasUserVerification ?? true,
      isUserVerified: options.isUserVerified ?? true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    id,
    cdp,
    setUserVerified: async (verified) => void (await cdp.send('WebAuthn.setUserVerified', { authenticatorId: id, isUserVerified: verified })),
    overrideResponseBits: async (bits) => void (await cdp.send('WebAuthn.setResponseOverrideBits', { authenticatorId: id, ...bits })),
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId: id })).credentials as VirtualCredential[],
    remove: async () => void (await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: id })),
  };
}
