import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

/** Debian's Chromium (apt package `chromium`), or CHROMIUM_PATH; never a downloaded browser. */
export function chromiumPath(): string | null {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  return null;
}

/**
 * Starts the system Chromium headless through playwright-core, or says why it cannot (the
 * browser tests then skip, printing it). As root Chromium needs --no-sandbox.
 */
export async function launchChromium(): Promise<{ browser: Browser } | { skip: string }> {
  const executablePath = chromiumPath();
  if (!executablePath) return { skip: 'no system Chromium (apt-get install chromium, or set CHROMIUM_PATH)' };
  try {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    return { browser };
  } catch (e) {
    return { skip: `Chromium at ${executablePath} did not start: ${(e as Error).message.split('\n')[0]}` };
  }
}
