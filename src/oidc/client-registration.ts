/**
 * What registering a client (the CLI, the bootstrap file, the admin API) needs from oidc-provider: the key of
 * the client-secret digest and the library's own metadata validation, so a client we store is one the provider
 * accepts. `Client.validate` is declared by @types/oidc-provider but is not in the library's documented API:
 * it is reached only here, and the services see a plain `validateMetadata` function.
 */
import type Provider from 'oidc-provider';
import type { ClientMetadata } from 'oidc-provider';
import type { Config } from '../config/index.js';
import type { ClientRegistration } from '../services/clients.js';
import { clientSecretKey } from '../services/clients.js';

/**
 * `provider` answers the instance whose configuration judges the metadata: the running one when there is one,
 * else one built with the same configuration (the CLI, or the bootstrap file applied before the server starts).
 * It is asked once, on the first validation.
 */
export function createClientRegistration(config: Config, provider: () => Provider | Promise<Provider>): ClientRegistration {
  let client: Promise<Provider['Client']> | undefined;
  return {
    secretKey: clientSecretKey(config),
    async validateMetadata(metadata) {
      client ??= Promise.resolve(provider()).then((instance) => instance.Client);
      await (await client).validate(metadata as unknown as ClientMetadata);
    },
  };
}
