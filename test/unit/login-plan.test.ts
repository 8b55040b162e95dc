/**
 * The sign-in step planner (services/login/plan.ts), without a database: which steps follow the password,
 * in which order, and which method a step is shown with first.
 */
import t from 'tap';
import { firstMethod, planSteps, type PlanFacts } from '../../src/services/login/plan.js';

const facts = (over: Partial<PlanFacts> = {}): PlanFacts => ({ hasFactor: false, mfaRequired: false, trustedDevice: false, newNetwork: false, ...over });
const off = { deviceVerification: 'off', ipVerification: 'off' } as const;
const challengeDevices = { deviceVerification: 'challenge', ipVerification: 'off' } as const;
const challengeNetworks = { deviceVerification: 'off', ipVerification: 'challenge' } as const;

t.test('a user with a factor: the second factor, and nothing else whatever the device, network or policy', async (t) => {
  for (const policy of [off, challengeDevices, challengeNetworks, { deviceVerification: 'challenge', ipVerification: 'challenge' } as const]) {
    t.same(planSteps(facts({ hasFactor: true }), policy), ['mfa']);
    t.same(planSteps(facts({ hasFactor: true, mfaRequired: true, newNetwork: true }), policy), ['mfa']);
    t.same(planSteps(facts({ hasFactor: true, trustedDevice: true }), policy), ['mfa']);
  }
});

t.test('no factor, nothing required, checks off: the password completes the sign-in', async (t) => {
  t.same(planSteps(facts(), off), []);
  t.same(planSteps(facts({ newNetwork: true }), off), [], 'a new network is not checked when IP_VERIFICATION is off');
  t.same(planSteps(facts({ newNetwork: true }), { deviceVerification: 'off', ipVerification: 'notify' }), [], '`notify` tells afterwards, it asks for no step');
});

t.test('DEVICE_VERIFICATION=challenge: an untrusted device confirms by a code; a trusted one does not', async (t) => {
  t.same(planSteps(facts(), challengeDevices), ['new_device']);
  t.same(planSteps(facts({ trustedDevice: true }), challengeDevices), []);
});

t.test('IP_VERIFICATION=challenge: a new network confirms by a code; a device check takes its place when both apply', async (t) => {
  t.same(planSteps(facts({ newNetwork: true }), challengeNetworks), ['new_ip']);
  t.same(planSteps(facts({ newNetwork: false }), challengeNetworks), []);
  t.same(planSteps(facts({ newNetwork: true }), { deviceVerification: 'challenge', ipVerification: 'challenge' }), ['new_device'], 'one code, for the device');
  t.same(planSteps(facts({ newNetwork: true, trustedDevice: true }), { deviceVerification: 'challenge', ipVerification: 'challenge' }), ['new_ip'], 'a trusted device on a new network');
});

t.test('MFA required and no factor: enrolment, preceded by a code to the account unless the device is trusted', async (t) => {
  t.same(planSteps(facts({ mfaRequired: true }), off), ['new_device', 'enroll'], 'a stolen password alone cannot enrol the thief\'s authenticator');
  t.same(planSteps(facts({ mfaRequired: true, trustedDevice: true }), off), ['enroll']);
  t.same(planSteps(facts({ mfaRequired: true, trustedDevice: true, newNetwork: true }), challengeNetworks), ['new_ip', 'enroll']);
  t.same(planSteps(facts({ mfaRequired: true, newNetwork: true }), challengeNetworks), ['new_device', 'enroll'], 'the device code covers the network too');
});

t.test('the first method of a step', async (t) => {
  t.equal(firstMethod('enroll', ['totp', 'sms', 'email'], undefined), undefined, 'enrolment shows a choice');
  t.equal(firstMethod('mfa', ['totp', 'sms', 'email'], 'sms'), 'sms', 'the preferred factor');
  t.equal(firstMethod('mfa', ['totp', 'email', 'recovery_code'], 'recovery_code'), 'totp', 'recovery codes are never shown first');
  t.equal(firstMethod('mfa', ['email', 'totp'], 'sms'), 'totp', 'a preferred factor the step does not offer: the authenticator');
  t.equal(firstMethod('mfa', ['sms', 'email', 'recovery_code'], undefined), 'email', 'then email');
  t.equal(firstMethod('mfa', ['sms', 'recovery_code'], undefined), 'sms', 'then SMS');
  t.equal(firstMethod('mfa', ['recovery_code'], undefined), 'recovery_code', 'then whatever is offered');
  t.equal(firstMethod('new_device', ['sms', 'email'], undefined), 'email', 'a device check goes to the account\'s address first');
  t.equal(firstMethod('new_ip', ['sms'], 'totp'), 'sms', 'the preference counts only for the second factor');
  t.equal(firstMethod('new_ip', [], undefined), undefined);
});
