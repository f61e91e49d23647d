import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The suite starts the release build itself (built by `cargo leptos build --release`),
// on a private port with a fresh SQLite database and key files in a temp folder.
// `cargo xtask test` picks the port; run alone, 3917 is used.
const port = Number(process.env.E2E_PORT ?? 3917);
export const baseURL = `http://127.0.0.1:${port}`;

// Set once in the main process; workers inherit it.
process.env.E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), 'jwt-auth-e2e-'));
const dataDir = process.env.E2E_DATA_DIR;

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list']],
  globalTeardown: './global-teardown.ts',
  timeout: 30_000,
  use: {
    baseURL,
    trace: 'retain-on-failure',
    browserName: 'chromium',
    launchOptions: {
      // Debian's Chromium; Playwright never downloads a browser here.
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--headless',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: 'target/release/server',
    cwd: '..',
    url: `${baseURL}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: 'target/site',
      DATABASE_URL: `sqlite://${dataDir}/e2e.db`,
      AUTH_KEY_FILE: `${dataDir}/jwt-ed25519.pem`,
      AUTH_SECRET_FILE: `${dataDir}/secret.key`,
      RATE_LIMIT_ENABLED: 'false',
      // Short-lived access tokens, so the suite sees them expire (plus the 5 s leeway).
      AUTH_ACCESS_TTL_SECS: '2',
      RUST_LOG: 'warn',
    },
  },
});
