import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const HOW_TO_GET_ONE =
  'No Chromium for the web page tests: install one (apt-get install chromium), point CHROMIUM_PATH at one, or npm install --no-save @sparticuz/chromium.';

/** The system's Chromium: CHROMIUM_PATH, else the first chromium / chromium-browser / google-chrome on PATH. */
function systemChromium(): string | undefined {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/snap/bin'];
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    for (const dir of dirs) {
      const path = join(dir, name);
      if (dir && existsSync(path)) return path;
    }
  }
  return undefined;
}

/** A Chromium shipped inside an npm package (unpacked to /tmp at first use), when it is installed. */
async function packagedChromium(): Promise<string | undefined> {
  try {
    const name = '@sparticuz/chromium';
    const { default: packaged } = (await import(name)) as { default: { executablePath(): Promise<string> } };
    return await packaged.executablePath();
  } catch {
    return undefined;
  }
}

/**
 * Headless Chromium for tests of the web pages: the machine's, or one from an npm package. When none starts,
 * the returned browser fails each use with one line saying how to get one, so only the tests that open a
 * page fail, not the Slack tests beside them in the same file.
 */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = systemChromium() ?? (await packagedChromium());
  if (!executablePath) return unavailable(HOW_TO_GET_ONE);
  try {
    return await chromium.launch({ executablePath, args: ARGS });
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0];
    return unavailable(`Chromium at ${executablePath} did not start (${first}). ${HOW_TO_GET_ONE}`);
  }
}

function unavailable(reason: string): Browser {
  return new Proxy({} as Browser, {
    get(_target, property) {
      if (property === 'close') return async () => {};
      if (property === 'then') return undefined;
      return () => {
        throw new Error(reason);
      };
    },
  });
}
