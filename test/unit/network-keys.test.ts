/** The address rules for counting clients, and the Basic client credentials a limit is keyed by. */
import t from 'tap';
import { basicClientCredentials } from '../../src/lib/client-basic-auth.js';
import { clientAddressKey, networkOf } from '../../src/lib/network.js';
import { canonicalPath } from '../../src/plugins/rate-limit.js';

t.test('clientAddressKey: IPv4 by address, IPv6 by /64', async (t) => {
  t.equal(clientAddressKey('203.0.113.77'), '203.0.113.77');
  t.equal(clientAddressKey('::ffff:203.0.113.77'), '203.0.113.77', 'IPv4-mapped counts as IPv4');
  t.equal(clientAddressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(clientAddressKey('2001:DB8:1:2::9'), '2001:db8:1:2::/64', 'any spelling of the /64');
  t.not(clientAddressKey('2001:db8:1:3::1'), clientAddressKey('2001:db8:1:2::1'));
  t.equal(clientAddressKey('not an ip'), 'not an ip');
  t.equal(networkOf('203.0.113.77'), '203.0.113.0/24', 'networkOf keeps its /24');
});

t.test('basicClientCredentials: both parts form-urlencoded (RFC 6749 §2.3.1)', async (t) => {
  const header = (raw: string) => `Basic ${Buffer.from(raw).toString('base64')}`;
  t.same(basicClientCredentials(header('my+app:s+e%2Bcret')), { id: 'my app', secret: 's e+cret' });
  t.same(basicClientCredentials(header('%61pp:x')), { id: 'app', secret: 'x' });
  t.equal(basicClientCredentials(header('%E0%A4%A:x')), undefined, 'malformed encoding');
  t.equal(basicClientCredentials(header(':x')), undefined, 'no client id');
  t.equal(basicClientCredentials('Bearer abc'), undefined);
});

t.test('canonicalPath: one spelling for every path the provider would match', async (t) => {
  for (const path of ['/oidc/token', '/oidc/TOKEN', '/OIDC/token/', '/oidc//token', '/oidc/%74oken', '/oidc/%2574oken', '/oidc/x/../token', '/oidc/./token?x=1']) {
    t.equal(canonicalPath(path), '/oidc/token', path);
  }
  t.equal(canonicalPath('/oidc/%E0%A4%A'), '/oidc/%e0%a4%a', 'malformed encoding stays as it is');
});
