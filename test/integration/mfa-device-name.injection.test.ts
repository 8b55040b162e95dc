/**
 * The client-supplied `device_name` is quoted in security emails ("Device: ..."): only a short printable
 * name is accepted, so a client cannot write lines of its own (a fake instruction, a link) into a mail the
 * user trusts. Names with line breaks, control or bidi-override characters, or over 64 characters are
 * refused with 400 before anything is checked or sent.
 */
import t from 'tap';
import { seedAuthUser } from '../helpers/auth.js';
import { auditLog, challengeFor, loginAs, mailbox, startMfaServer } from '../helpers/mfa.js';

t.test('device names: printable and short, or refused', async (t) => {
  const { server, smtp } = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  await seedAuthUser(server);
  const box = mailbox(smtp, 'alice@example.com');

  const hostile = [
    'Phone\n\nYour account is locked. Unlock it at http://evil.example/unlock',
    'Phone\r\nBcc: someone@evil.example',
    'Phone\u2028Call +1 555 0100 now',
    'Phone\tTab',
    '\u202Eenohp',
    'Phone\u0000',
    'x'.repeat(65),
    '   ',
  ];
  for (const name of hostile) {
    t.match(await loginAs(server, 'alice@example.com', { device_id: 'phone', device_name: name }), { status: 400, body: { error: 'invalid_request' } }, JSON.stringify(name.slice(0, 20)).replace(/[\u2028\u2029]/g, '\\u2028'));
  }
  t.equal(box.count(), 0, 'nothing was sent');
  t.notOk((await auditLog(server)).some((e) => e.type === 'login.challenge'), 'no sign-in was started');

  const ok = await challengeFor(server, 'alice@example.com', { device_id: 'phone', device_name: '  Alice\'s iPhone 15 (work) ' });
  t.equal(ok.reason, 'new_device');
  t.match((await box.next()).text, /\nDevice: Alice's iPhone 15 \(work\)\r?\nIP address: /, 'a printable name (trimmed) is quoted on one line');
  t.equal((await loginAs(server, 'alice@example.com', { device_id: 'tablet', device_name: 'Café tablet ✓ 日本' })).status, 200, 'printable letters and symbols of any script are fine');
});
