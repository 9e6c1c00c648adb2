/**
 * Headless Chromium for the pool map's browser tests: the Debian `chromium` package (or
 * CHROMIUM_PATH) driven by playwright-core, which downloads no browser of its own. Missing, the
 * suites skip loudly, or fail under PODLEASE_REQUIRE_ALL=1.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export const chromiumPath = (): string | undefined => {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv !== undefined && fromEnv !== '') return existsSync(fromEnv) ? fromEnv : undefined;
  return CANDIDATES.find(p => existsSync(p));
};

export const requireAll = process.env.PODLEASE_REQUIRE_ALL === '1';

/** Why the browser suites cannot run here ('' when they can). */
export const chromiumSkip = (): string =>
  chromiumPath() === undefined
    ? 'no Chromium: install the Debian package (apt-get install chromium) or set CHROMIUM_PATH'
    : '';

export const launchChromium = async (): Promise<Browser> => {
  const executablePath = chromiumPath();
  if (executablePath === undefined) throw new Error(chromiumSkip());
  // Chromium refuses its sandbox as root (CI runs as root).
  const root = process.getuid?.() === 0;
  return chromium.launch({
    executablePath,
    headless: true,
    args: root ? ['--no-sandbox'] : [],
  });
};

/** Where test artifacts (screenshots) are kept: test-artifacts/ at the repository root (ignored by git). */
export const artifactDir = (name: string): string => {
  const dir = join(fileURLToPath(new URL('../../test-artifacts', import.meta.url)), name);
  mkdirSync(dir, { recursive: true });
  return dir;
};
