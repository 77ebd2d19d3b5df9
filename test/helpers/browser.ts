/**
 * Debian's Chromium driven by playwright-core, as the dashboard's tests use it: where it is,
 * why a test skips without it, how it is launched, and a step that leaves a screenshot when it
 * fails.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** `skip` for a suite that needs Chromium: false when it is installed, the reason when not. */
export const chromiumSkip: string | false = existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium)`;

/** Headless, no sandbox (tests run as root), no network of its own. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
}

/**
 * Runs named steps; a step that fails saves what the page showed as
 * `test-results/<prefix>-<name>.png` before its error goes on.
 */
export function screenshotSteps(prefix: string): (name: string, p: Page, fn: () => Promise<void>) => Promise<void> {
  return async (name, p, fn) => {
    try {
      await fn();
    } catch (err) {
      mkdirSync('test-results', { recursive: true });
      await p.screenshot({ path: join('test-results', `${prefix}-${name}.png`), fullPage: true }).catch(() => undefined);
      throw err;
    }
  };
}
