/**
 * The floor for `npm run bench`: a bare oidc-provider (same version as keryu-auth uses) with its default
 * in-memory adapter, one static client and a fixed account, on a plain node:http server. It is configured
 * like keryu-auth where it changes the work done per request (PKCE for every client, refresh rotation,
 * RS256 + ES256 signing keys, the same lifetimes), and nothing else.
 *
 * Adapter: the library's own in-memory adapter and LRU store, only with room for more than the default 1000
 * entries, which a bench run outgrows within a second (the pre-issued codes and refresh tokens would be
 * evicted before they are used).
 *
 * The login and consent interaction is automatic: GET /interaction/:uid logs the fixed account in, grants
 * what was asked for and redirects back, so codes and refresh tokens come out of the real protocol path.
 *
 * Environment: PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI, BENCH_ACCOUNT_ID.
 */
import { generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Provider, { type Adapter, type Configuration } from 'oidc-provider';
// @ts-expect-error: the library ships no types for its internal memory adapter
import MemoryAdapterUntyped from 'oidc-provider/lib/adapters/memory_adapter.js';
// @ts-expect-error: nor for the LRU store it keeps entries in
import LRUUntyped from 'oidc-provider/lib/helpers/lru.js';

const MemoryAdapter = MemoryAdapterUntyped as new (model: string, store: object, clockTolerance: number) => Adapter;
const LRU = LRUUntyped as new (options: { maxSize: number }) => object;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`bare-provider: ${name} is required`);
  return value;
}

const port = Number(required('PORT'));
const clientId = required('BENCH_CLIENT_ID');
const clientSecret = required('BENCH_CLIENT_SECRET');
const redirectUri = required('BENCH_REDIRECT_URI');
const accountId = required('BENCH_ACCOUNT_ID');
const issuer = `http://127.0.0.1:${port}`;

/** The same key types keryu-auth generates: RSA-2048 for RS256 and P-256 for ES256. */
function signingKey(alg: 'RS256' | 'ES256'): JsonWebKey {
  const { privateKey } = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: `bare-${alg.toLowerCase()}`, alg, use: 'sig' };
}

// keryu-auth's defaults (src/config/index.ts), so both issue tokens with the same lifetimes.
const ttl = {
  accessToken: 600,
  idToken: 3600,
  authorizationCode: 60,
  clientCredentials: 600,
  interaction: 900,
  session: 8 * 3600,
  refreshToken: 14 * 86400,
  grant: 90 * 86400,
};

const store = new LRU({ maxSize: 5_000_000 });

const configuration: Configuration = {
  // 15 s: the library's default clockTolerance, which its own factory passes to the adapter.
  adapter: (model: string) => new MemoryAdapter(model, store, 15),
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [redirectUri],
      scope: 'openid offline_access',
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey('RS256'), signingKey('ES256')] } as Configuration['jwks'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'updated_at'] },
  conformIdTokenClaims: true,
  async findAccount(_ctx, sub) {
    return { accountId: sub, claims: async () => ({ sub }) };
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  responseTypes: ['code'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
  },
  ttl: {
    AccessToken: ttl.accessToken,
    AuthorizationCode: ttl.authorizationCode,
    ClientCredentials: ttl.clientCredentials,
    IdToken: ttl.idToken,
    Interaction: ttl.interaction,
    Session: ttl.session,
    RefreshToken: ttl.refreshToken,
    Grant: ttl.grant,
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => process.stderr.write(`bare-provider: server_error: ${err.stack ?? String(err)}\n`));
const callback = provider.callback();

/**
 * Logs the fixed account in and grants every requested scope, then hands the browser back. Every
 * interaction gets a grant of its own, as separate users would: the in-memory adapter indexes tokens per
 * grant and rescans a grant's index on every save, so one grant shared by thousands of pre-issued tokens
 * would slow the floor down for a reason no real deployment has.
 */
async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
  if (typeof details.params.scope === 'string') grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url?.startsWith('/interaction/')) {
    interaction(req, res).catch((err: unknown) => {
      process.stderr.write(`bare-provider: interaction failed: ${err instanceof Error ? err.message : String(err)}\n`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
    return;
  }
  void callback(req, res);
});
// Fastify's default (keryu-auth): keep idle keep-alive connections as long as it does.
server.keepAliveTimeout = 72_000;

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(port, '127.0.0.1', () => process.stdout.write(`bare-provider listening at ${issuer}\n`));
