/**
 * Password hashing: argon2id at OWASP parameters, and no timing difference between a wrong password and an
 * unknown account (the unknown account is verified against a dummy hash). Medians over repeated tries.
 */
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { createPasswordHasher } from '../../src/services/password.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

t.test('argon2id with OWASP parameters, NFKC-normalized', async (t) => {
  const hasher = createPasswordHasher();
  const hash = await hasher.hash('correct horse battery staple');
  t.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  t.ok(hasher.isArgon2idHash(hash));
  t.ok(await hasher.verify(hash, 'correct horse battery staple'));
  t.notOk(await hasher.verify(hash, 'correct horse battery stapler'));
  t.notOk(await hasher.verify(undefined, 'correct horse battery staple'), 'no stored hash never verifies');
  const composed = await hasher.hash('caf\u00e9 au lait please');
  t.ok(await hasher.verify(composed, 'cafe\u0301 au lait please'), 'composed and decomposed forms are the same password');
});

t.test('unknown account and wrong password take the same time (medians)', async (t) => {
  const hasher = createPasswordHasher({ concurrency: 1 });
  const hash = await hasher.hash('the real password of someone');
  await hasher.verify(undefined, 'warm up the dummy hash');
  const wrong: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 15; i++) {
    let start = performance.now();
    await hasher.verify(hash, `wrong password ${i}`);
    wrong.push(performance.now() - start);
    start = performance.now();
    await hasher.verify(undefined, `wrong password ${i}`);
    unknown.push(performance.now() - start);
  }
  const ratio = median(unknown) / median(wrong);
  t.ok(ratio > 0.6 && ratio < 1.6, `median ratio unknown/wrong = ${ratio.toFixed(2)} (${median(unknown).toFixed(1)} ms vs ${median(wrong).toFixed(1)} ms)`);
});
