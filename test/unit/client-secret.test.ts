/**
 * Client authentication's secret check (services/clients.ts), the one the provider calls at every endpoint:
 * the keyed digest of the presented secret against the stored one; a client without a stored digest never matches.
 */
import t from 'tap';
import { hmacDigest } from '../../src/lib/crypto.js';
import { clientSecretKey, clientSecretMatches } from '../../src/services/clients.js';

t.test('clientSecretMatches compares keyed digests', async (t) => {
  const key = clientSecretKey({ secret: 'test-secret-0123456789abcdef0123456789abcdef' });
  const secret = 'a client secret of at least 32 characters';
  const stored = hmacDigest(key, secret);
  t.ok(clientSecretMatches(key, stored, secret), 'the right secret');
  t.notOk(clientSecretMatches(key, stored, `${secret} `), 'another secret');
  t.notOk(clientSecretMatches(key, stored, stored), 'the stored digest itself is not the secret');
  t.notOk(clientSecretMatches(key, undefined, secret), 'a client without a secret');
  t.notOk(clientSecretMatches(clientSecretKey({ secret: 'another-secret-0123456789abcdef0123456789ab' }), stored, secret), 'a digest under another server secret');
});
