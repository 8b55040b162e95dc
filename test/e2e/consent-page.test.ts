/**
 * The consent page in headless Chromium, JavaScript on and off: scopes in plain words, the client's name, and
 * its logo, privacy policy and terms when its registration has them (RFC 7591 `logo_uri`, `policy_uri`,
 * `tos_uri`). The logo loads because the page's `img-src` names its exact origin, and nothing wider. Bad
 * metadata (http across a network, `javascript:`, credentials in the URL) is refused naming the field.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import tap from 'tap';
import { ZodError } from 'zod';
import { launchChromium, relyingPartyPage, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { authorizationRequest, discover, seedClient, seedUser } from '../helpers/oidc.js';
import { checkPage } from '../helpers/pages.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { startServer } from '../helpers/server.js';

/** A 1x1 PNG: the client's logo. */
const LOGO = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

tap.test('the consent page', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  await seedUser(server);
  // The client's own site, on loopback: serves the logo and counts the requests for it.
  let logoRequests = 0;
  const site = createServer((req, res) => {
    if (req.url === '/logo.png') logoRequests++;
    res.writeHead(req.url === '/logo.png' ? 200 : 404, { 'content-type': 'image/png' }).end(req.url === '/logo.png' ? LOGO : undefined);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => site.close(() => resolve())));
  const siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  const browser = await launchChromium();
  t.teardown(() => browser.close());

  async function openConsent(t: Pick<typeof tap, 'teardown'>, clientId: string, clientSecret: string | undefined, javaScriptEnabled: boolean) {
    const config = await discover(server, { clientId, clientSecret });
    const { url } = await authorizationRequest(config, { scope: 'openid profile email offline_access', prompt: 'consent' });
    const { page } = await relyingPartyPage(browser, t, { javaScriptEnabled });
    await page.goto(url.href);
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Allow', exact: true }).waitFor();
    return page;
  }

  for (const javaScriptEnabled of [true, false]) {
    t.test(`name, logo, policy and terms, scopes in words (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async (t) => {
      const seeded = await seedClient(server, {
        client_name: 'Photo Print',
        logo_uri: `${siteOrigin}/logo.png`,
        policy_uri: 'https://photoprint.example/privacy',
        tos_uri: 'https://photoprint.example/terms',
      });
      const before = logoRequests;
      const page = await openConsent(t, seeded.clientId, seeded.clientSecret, javaScriptEnabled);
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Allow access?');
      t.match(await page.locator('p.client').textContent(), /Photo Print is asking to:/, 'the client by its name');
      t.same(await page.locator('ul.scopes li').allTextContents(), [
        'Sign you in',
        'See your name and profile picture',
        'See your email address',
        'Stay signed in: keep access while you are not using it',
      ], 'each scope in plain words');
      t.notMatch(await page.textContent('main'), /offline_access|openid|profile,|email,/, 'no raw scope names');

      const logo = page.locator('img.client-logo');
      t.equal(await logo.getAttribute('src'), `${siteOrigin}/logo.png`, 'the logo');
      const loaded = () => logo.evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).complete && (img as unknown as { naturalWidth: number }).naturalWidth);
      for (let i = 0; i < 50 && !(await loaded()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      t.equal(await loaded(), 1, 'and the browser loaded it (the CSP allows its origin)');
      t.ok(logoRequests > before, 'from the client\'s site');
      t.equal(await page.getByRole('link', { name: 'privacy policy' }).getAttribute('href'), 'https://photoprint.example/privacy', 'the privacy policy link');
      t.equal(await page.getByRole('link', { name: 'terms of service' }).getAttribute('href'), 'https://photoprint.example/terms', 'the terms link');

      const csp = (await page.request.get(page.url())).headers()['content-security-policy'] ?? '';
      t.match(csp, `img-src 'self' data: ${siteOrigin};`, 'img-src names the logo\'s exact origin');
      t.notMatch(csp, /img-src[^;]*\bhttps?:(?!\/\/)/, 'and no scheme-wide source');
      t.match(csp, /frame-ancestors 'none'/);
      if (javaScriptEnabled) await checkPage(t, page, 'consent', 'consent');
    });
  }

  t.test('a client without logo or links: the name only, and the usual image policy', async (t) => {
    const seeded = await seedClient(server, { client_name: 'Plain App' });
    const page = await openConsent(t, seeded.clientId, seeded.clientSecret, true);
    t.match(await page.locator('p.client').textContent(), /Plain App is asking to:/);
    t.equal(await page.locator('img').count(), 0, 'no image');
    t.equal(await page.getByRole('link').count(), 0, 'no policy or terms link');
    const csp = (await page.request.get(page.url())).headers()['content-security-policy'] ?? '';
    t.match(csp, "img-src 'self' data:;", 'images from this origin only');
  });

  t.test('bad metadata is refused, naming the field', async (t) => {
    const refused = async (field: string, value: string) => {
      const error = await seedClient(server, { [field]: value }).then(
        () => undefined,
        (err: unknown) => err,
      );
      t.type(error, ZodError, `${field}=${value} is refused`);
      const issue = (error as ZodError | undefined)?.issues[0];
      t.same(issue?.path, [field], 'naming the field');
      t.match(issue?.message, /https/, 'and saying what it must be');
    };
    await refused('logo_uri', 'http://photoprint.example/logo.png');
    await refused('policy_uri', 'javascript:alert(1)');
    await refused('tos_uri', 'data:text/html,<script>alert(1)</script>');
    await refused('logo_uri', 'https://user:secret@photoprint.example/logo.png');
    await refused('tos_uri', 'not a url');
    const loopback = await seedClient(server, { logo_uri: 'http://localhost:8080/logo.png', policy_uri: 'https://photoprint.example/privacy' });
    t.ok(loopback.clientId, 'http on a loopback host is accepted (as for redirect URIs)');
    const stored = await server.app.keryu.services.clients.validateDeclaredClient({ client_id: 'declared', client_secret: 'x'.repeat(32), redirect_uris: ['https://photoprint.example/cb'], logo_uri: 'https://photoprint.example/logo.png' });
    t.equal(stored.metadata.logo_uri, 'https://photoprint.example/logo.png', 'the metadata passes through to the provider\'s client');
  });
});
