/**
 * Client authentication's secret check (services/clients.ts), the one the provider calls at every endpoint:
 * the keyed digest of the presented secret against the stored one; a client without a stored digest never matches.
 */
import t from 'tap';
import { hmacDigest } from '../../src/lib/crypto.js';
import { clientSecretAccepted, clientSecretKey } from '../../src/services/clients.js';

t.test('clientSecretAccepted compares keyed digests', async (t) => {
  const key = clientSecretKey({ secret: 'test-secret-0123456789abcdef0123456789abcdef' });
  const secret = 'a client secret of at least 32 characters';
  const stored = { digest: hmacDigest(key, secret) };
  const now = new Date();
  t.ok(clientSecretAccepted(key, stored, secret, now), 'the right secret');
  t.notOk(clientSecretAccepted(key, stored, `${secret} `, now), 'another secret');
  t.notOk(clientSecretAccepted(key, stored, stored.digest, now), 'the stored digest itself is not the secret');
  t.notOk(clientSecretAccepted(key, { digest: undefined }, secret, now), 'a client without a secret');
  t.notOk(clientSecretAccepted(clientSecretKey({ secret: 'another-secret-0123456789abcdef0123456789ab' }), stored, secret, now), 'a digest under another server secret');
});

t.test('clientSecretAccepted: the current secret, and the previous one until its grace period ends', async (t) => {
  const key = clientSecretKey({ secret: 'test-secret-0123456789abcdef0123456789abcdef' });
  const current = 'the current client secret, at least 32 characters';
  const previous = 'the previous client secret, at least 32 characters';
  const until = new Date('2030-01-01T00:00:00Z');
  const stored = { digest: hmacDigest(key, current), previousDigest: hmacDigest(key, previous), previousExpiresAt: until };
  const before = new Date(until.getTime() - 1);
  t.ok(clientSecretAccepted(key, stored, current, before), 'the current secret');
  t.ok(clientSecretAccepted(key, stored, previous, before), 'the previous one during its grace period');
  t.notOk(clientSecretAccepted(key, stored, previous, until), 'not once it ends');
  t.ok(clientSecretAccepted(key, stored, current, until), 'the current one goes on');
  t.notOk(clientSecretAccepted(key, { digest: stored.digest, previousDigest: stored.previousDigest }, previous, before), 'a previous digest without an end is never accepted');
  t.notOk(clientSecretAccepted(key, { digest: undefined }, current, before), 'a client without a secret');
});
