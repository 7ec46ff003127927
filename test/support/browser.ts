import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { REPO_ROOT } from './node-red-process';

/** Debian's chromium (`.ci/run` installs it); playwright-core never downloads a browser. */
export const CHROMIUM_PATH = process.env.KASA_CHROMIUM ?? '/usr/bin/chromium';

/** Screenshots and other files a browser test leaves for people to look at (git-ignored). */
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts');

/**
 * Fails loudly when chromium is missing: a browser test must never pass by not running.
 */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (apt-get install chromium) ` +
        'or point KASA_CHROMIUM at a Chromium binary. Browser tests cannot run without it.',
    );
  }
}

/**
 * Starts headless chromium with the flags this machine needs: no sandbox (root), and no
 * background networking, so the browser never reaches past loopback.
 */
export async function launchBrowser(): Promise<Browser> {
  requireChromium();
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Saves a full-page screenshot as test-artifacts/<name>.png and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
