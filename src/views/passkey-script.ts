/**
 * The pages' one script: @simplewebauthn/browser's browser bundle followed by our views/passkeys.js, served
 * as one file at a path named after its content (a new release gets a new path), so it can be cached for a
 * year and pages can pin it with Subresource Integrity. Pages that carry it allow `script-src 'self'` (and
 * `connect-src 'self'` for its options request); every other page keeps a policy with no script at all.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The package exports only its entry point; its browser bundle sits beside it (dist/bundle, sets
// `window.SimpleWebAuthnBrowser`).
const libraryEntry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
const libraryBundle = readFileSync(join(dirname(libraryEntry), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8');
const ours = readFileSync(fileURLToPath(new URL('../../src/views/passkeys.js', import.meta.url)), 'utf8');

const body = `${libraryBundle}\n;\n${ours}`;

export interface PageScript {
  /** Where it is served (`/assets/passkeys-<content digest>.js`). */
  path: string;
  /** Its Subresource Integrity value (W3C SRI §3.5), for the `integrity` attribute of the script element. */
  integrity: string;
  body: string;
}

export const passkeyScript: PageScript = Object.freeze({
  path: `/assets/passkeys-${createHash('sha256').update(body).digest('hex').slice(0, 16)}.js`,
  integrity: `sha384-${createHash('sha384').update(body).digest('base64')}`,
  body,
});
