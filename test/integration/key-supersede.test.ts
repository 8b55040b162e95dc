/**
 * A scheduled rotation superseded by an immediate one: the key rotated in last signs, and the superseded
 * pending key never does. (Before the fix, the superseded key took over when its own activation time
 * came, and kept signing until its retirement, which had been scheduled from the immediate rotation: so
 * it was unpublished while the tokens it had just signed were still valid.)
 * Runs on PGlite and PostgreSQL; the clock is injected.
 */
import t from 'tap';
import { deriveKey } from '../../src/lib/crypto.js';
import { createAuditService } from '../../src/services/audit.js';
import { createSigningKeyService } from '../../src/services/signing-keys.js';
import { createTestDatabase } from '../helpers/db.js';

const HOUR = 3600;

t.test('an immediate rotation supersedes a pending one', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const start = Date.parse('2030-01-01T00:00:00Z');
  let now = new Date(start);
  const at = (seconds: number) => (now = new Date(start + seconds * 1000));
  const keys = createSigningKeyService({
    db: db.database.db,
    audit: createAuditService({ db: db.database.db, log: { error: () => {} } }),
    encryptionKey: deriveKey('k'.repeat(40), 'signing-key-encryption'),
    maxSignedTtlSeconds: HOUR,
    rotationDelaySeconds: HOUR,
    now: () => now,
  });
  await keys.ensureSigningKeys();
  const initial = (await keys.listSigningKeys()).map((k) => k.kid);

  at(0);
  const scheduled = (await keys.rotateSigningKeys({ activateInSeconds: HOUR })).keys.map((k) => k.kid);
  at(HOUR / 2);
  const immediate = (await keys.rotateSigningKeys({ activateInSeconds: 0 })).keys.map((k) => k.kid);

  const signingAt = async (seconds: number) => {
    at(seconds);
    const set = await keys.loadKeySet();
    const fingerprint = await keys.currentFingerprint();
    t.equal(fingerprint, set.fingerprint, `t=${seconds}s: the cheap fingerprint agrees with the loaded set`);
    return set.jwks.keys.filter((k) => !k.key_ops).map((k) => k.kid).sort();
  };

  t.same(await signingAt(HOUR / 2), [...immediate].sort(), 'the immediate rotation signs at once');
  t.same(await signingAt(HOUR + 1), [...immediate].sort(), 'and still signs after the superseded key\'s activation time');
  t.same(await signingAt(HOUR * 1.5 - 1), [...immediate].sort(), 'up to the superseded key\'s retirement');

  at(HOUR + 1);
  const states = Object.fromEntries((await keys.listSigningKeys()).map((k) => [k.kid, k.state]));
  t.same(scheduled.map((k) => states[k]), ['retiring', 'retiring'], 'the superseded keys are only kept for verification');
  t.same(immediate.map((k) => states[k]), ['signing', 'signing'], 'the immediate keys sign');
  t.same(initial.map((k) => states[k]), ['retiring', 'retiring'], 'the initial keys are retiring');

  // A superseded key never signed, so dropping it at its retirement strands no token.
  at(HOUR * 1.5 + 1);
  const published = (await keys.loadKeySet()).jwks.keys.map((k) => k.kid);
  t.notOk(scheduled.some((k) => published.includes(k)), 'the superseded keys are unpublished at their retirement');
  t.same(await signingAt(HOUR * 1.5 + 1), [...immediate].sort(), 'the immediate rotation keeps signing');
});
