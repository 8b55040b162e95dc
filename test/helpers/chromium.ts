/**
 * Headless Chromium for page tests: Debian's system browser driven by playwright-core (never a downloaded
 * one), and a page whose requests to the relying party (REDIRECT_URI's origin, where nothing listens) are
 * answered by the test. The callback is reached by a redirect, and Playwright's page.route never sees
 * redirect hops, so this uses the DevTools Fetch domain, which pauses every matching request (before
 * Chromium's unsafe-port check for port 9, too).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REDIRECT_URI } from './oidc.js';

export const chromiumPath = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => typeof p === 'string' && p !== '' && existsSync(p),
);
/** tap's `skip` option for tests that need the browser. */
export const SKIP_WITHOUT_CHROMIUM = chromiumPath ? false : 'needs a system Chromium (/usr/bin/chromium or CHROMIUM_PATH)';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    // Without the background-networking flags Chromium keeps dialing out, which this machine's closed network refuses.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
}

/** A fresh browser profile (closed at the test's teardown); `callbacks` lists the relying-party URLs it requested. */
export async function relyingPartyPage(
  browser: Browser,
  t: { teardown(fn: () => unknown): void },
  options: { javaScriptEnabled?: boolean } = {},
): Promise<{ page: Page; callbacks: string[] }> {
  const context = await browser.newContext({ javaScriptEnabled: options.javaScriptEnabled ?? true });
  t.teardown(() => context.close());
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const callbacks: string[] = [];
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', (event) => {
    if (event.request.url.startsWith(REDIRECT_URI)) callbacks.push(event.request.url);
    cdp
      .send('Fetch.fulfillRequest', {
        requestId: event.requestId,
        responseCode: 200,
        responseHeaders: [{ name: 'content-type', value: 'text/html; charset=utf-8' }],
        body: Buffer.from('<!doctype html><title>callback</title><p>signed in</p>').toString('base64'),
      })
      .catch(() => {});
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${new URL(REDIRECT_URI).origin}/*`, requestStage: 'Request' }] });
  return { page, callbacks };
}
