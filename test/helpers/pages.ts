/**
 * What every page test checks besides behaviour: accessibility with axe-core inside Chromium (no serious or
 * critical violation), and screenshots at desktop and phone width written to test-output/screenshots/ so a
 * reviewer can look at every page.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Page } from 'playwright-core';

export const SCREENSHOT_DIR = join(process.cwd(), 'test-output', 'screenshots');

const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;

/** Serious or critical axe-core violations of the page as it is now (rule id and the first offending node). */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes[0]?.target.join(' ') ?? ''})`);
}

/** Full-page screenshots at desktop and phone width: `<folder>/<name>-desktop.png` and `-phone.png`. */
export async function screenshots(page: Page, folder: string, name: string): Promise<void> {
  const dir = join(SCREENSHOT_DIR, folder);
  mkdirSync(dir, { recursive: true });
  const original = page.viewportSize();
  for (const [label, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(dir, `${name}-${label}.png`), fullPage: true });
  }
  if (original) await page.setViewportSize(original);
}

/** Both checks for the page as it is now; tap assertions named after the page. */
export async function checkPage(t: { same(found: unknown, wanted: unknown, message: string): unknown }, page: Page, folder: string, name: string): Promise<void> {
  t.same(await accessibilityViolations(page), [], `${name}: no serious or critical accessibility violation`);
  await screenshots(page, folder, name);
}
