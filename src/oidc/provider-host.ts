/**
 * Holds the running oidc-provider instance and replaces it when the signing keys change. The library reads
 * its key set once, at construction; all its state lives in the database, so swapping the instance is
 * invisible to clients. Every replica polls a cheap fingerprint, so a rotated key is served everywhere
 * within KEY_REFRESH_INTERVAL seconds, without a restart.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { publicPart, type KeySet, type PrivateJwk, type SigningKeyService } from '../services/signing-keys.js';

export interface ProviderHostLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ProviderHost {
  readonly provider: Provider;
  /** The public keys currently published (for verifying our own JWTs outside the provider). */
  publicJwks(): { keys: Array<Record<string, unknown>> };
  /** The private key that signs now for `alg` (first-party access tokens are signed outside the provider). */
  currentSigningKey(alg?: string): PrivateJwk;
  /** Node request handler that always reaches the current instance. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Reloads the keys now if they changed (the poll calls it; tests may too). */
  refresh(): Promise<boolean>;
  close(): void;
}

export async function createProviderHost(deps: {
  keys: SigningKeyService;
  build: (keySet: KeySet) => Provider;
  refreshIntervalSeconds: number;
  log: ProviderHostLogger;
  /** Called after each successful poll (metrics record when the keys were last checked). */
  onPolled?: () => void;
}): Promise<ProviderHost> {
  let keySet = await deps.keys.loadKeySet();
  let provider = deps.build(keySet);
  let handler = provider.callback();
  let refreshing: Promise<boolean> | undefined;
  let publicKeys = { keys: keySet.jwks.keys.map(publicPart) };

  async function reload(): Promise<boolean> {
    const fingerprint = await deps.keys.currentFingerprint();
    if (fingerprint === keySet.fingerprint) return false;
    const next = await deps.keys.loadKeySet();
    const nextProvider = deps.build(next);
    keySet = next;
    provider = nextProvider;
    handler = nextProvider.callback();
    publicKeys = { keys: next.jwks.keys.map(publicPart) };
    deps.log.info({ keys: next.fingerprint }, 'signing keys changed; provider reloaded');
    return true;
  }

  function refresh(): Promise<boolean> {
    refreshing ??= reload().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  const timer = setInterval(() => {
    refresh().then(deps.onPolled, (err: unknown) => deps.log.error({ err }, 'signing key refresh failed'));
  }, deps.refreshIntervalSeconds * 1000);
  timer.unref();

  return {
    get provider() {
      return provider;
    },
    publicJwks: () => publicKeys,
    currentSigningKey(alg = 'ES256') {
      // Signing keys come first and carry no key_ops; verify-only keys are marked ['verify'].
      const key = keySet.jwks.keys.find((k) => k.alg === alg && k.key_ops === undefined);
      if (!key) throw new Error(`no ${alg} signing key`);
      return key;
    },
    handle: (req, res) => {
      void handler(req, res);
    },
    refresh,
    close: () => clearInterval(timer),
  };
}
