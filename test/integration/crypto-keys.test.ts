import t from 'tap';
import { signingKeys } from '../../src/db/schema/index.js';
import { decrypt, deriveKey, encrypt } from '../../src/lib/crypto.js';
import { createAuditService } from '../../src/services/audit.js';
import { createSigningKeyService } from '../../src/services/signing-keys.js';
import { createTestDatabase } from '../helpers/db.js';

t.test('authenticated encryption at rest', async (t) => {
  const key = deriveKey('a'.repeat(40), 'test');
  const sealed = encrypt(key, 'private material', 'row-1');
  t.notMatch(sealed, /private material/);
  t.equal(decrypt(key, sealed, 'row-1'), 'private material');
  t.throws(() => decrypt(key, sealed, 'row-2'), 'bound to its row (AAD)');
  t.throws(() => decrypt(deriveKey('b'.repeat(40), 'test'), sealed, 'row-1'), 'wrong key fails');
  const parts = sealed.split('.');
  parts[3] = Buffer.from('tampered').toString('base64url');
  t.throws(() => decrypt(key, parts.join('.'), 'row-1'), 'tampering is detected');
  t.not(deriveKey('a'.repeat(40), 'one').toString('hex'), deriveKey('a'.repeat(40), 'two').toString('hex'), 'keys are purpose-bound');
});

t.test('signing keys: generated once, encrypted at rest, rotated with a publication delay', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  let now = new Date('2026-01-01T00:00:00Z');
  const audit = createAuditService({ db: db.database.db, log: { error: () => {} } });
  const keys = createSigningKeyService({
    db: db.database.db,
    audit,
    encryptionKey: deriveKey('k'.repeat(40), 'signing-key-encryption'),
    maxSignedTtlSeconds: 3600,
    rotationDelaySeconds: 600,
    now: () => now,
  });

  const created = await Promise.all([keys.ensureSigningKeys(), keys.ensureSigningKeys(), keys.ensureSigningKeys()]);
  t.equal(created.filter(Boolean).length, 1, 'concurrent first starts generate one key set');
  const rows = await db.database.db.select().from(signingKeys);
  t.same(rows.map((r) => r.alg).sort(), ['ES256', 'RS256']);
  for (const row of rows) {
    t.notOk('d' in row.publicJwk, 'public part has no private member');
    t.notMatch(row.privateJwkEncrypted, /"d"/, 'private JWK is not stored in clear');
  }

  const before = await keys.loadKeySet();
  t.equal(before.jwks.keys.filter((k) => !k.key_ops).length, 2, 'one signing key per alg');

  await keys.rotateSigningKeys({ activateInSeconds: 600 });
  const pending = await keys.loadKeySet();
  t.equal(pending.jwks.keys.length, 4, 'new keys are published at once');
  t.same(
    pending.jwks.keys.filter((k) => !k.key_ops).map((k) => k.kid).sort(),
    before.jwks.keys.map((k) => k.kid).sort(),
    'old keys keep signing until the new ones activate',
  );
  t.not(pending.fingerprint, before.fingerprint);
  t.equal(await keys.currentFingerprint(), pending.fingerprint, 'cheap fingerprint matches the loaded set');

  now = new Date(now.getTime() + 601_000);
  const active = await keys.loadKeySet();
  const signing = active.jwks.keys.filter((k) => !k.key_ops).map((k) => k.kid);
  t.equal(signing.length, 2);
  t.notOk(signing.some((kid) => before.jwks.keys.some((k) => k.kid === kid)), 'new keys sign after the delay');
  t.equal(active.jwks.keys[0]?.key_ops, undefined, 'signing keys come first');

  const states = await keys.listSigningKeys();
  t.equal(states.filter((s) => s.state === 'retiring').length, 2, 'old keys stay published for verification');
});
