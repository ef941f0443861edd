/**
 * What every browser test starts: a real Directus (the bundle loaded) and a headless Chromium to
 * drive its Studio. `stop()` closes the browser, then Directus.
 */
import { type LaunchedChromium, launchChromium } from './browser.js';
import { type StartDirectusOptions, startDirectus, type TestDirectus } from './directus.js';

export interface StudioSession {
  directus: TestDirectus;
  browser: LaunchedChromium;
  stop(): Promise<void>;
}

export async function startStudio(
  opts: StartDirectusOptions & { viewport?: { width: number; height: number } },
): Promise<StudioSession> {
  const { viewport, ...directusOptions } = opts;
  const directus = await startDirectus(directusOptions);
  let browser: LaunchedChromium;
  try {
    browser = await launchChromium({ viewport });
  } catch (err) {
    await directus.stop();
    throw err;
  }
  return {
    directus,
    browser,
    async stop() {
      await browser.close();
      await directus.stop();
    },
  };
}
