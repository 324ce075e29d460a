import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (never a downloaded browser), headless, with the flags these machines need. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
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

/** Where a test's screenshots go: test-output/screenshots/<suite>/. */
export function screenshotter(suite: string): (page: Page, name: string) => Promise<void> {
  const dir = join('test-output', 'screenshots', suite);
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, name) => {
    n += 1;
    await page.screenshot({
      path: join(dir, `${String(n).padStart(2, '0')}-${name}.png`),
      fullPage: true,
    });
  };
}
