import { defineConfig } from '@playwright/test';
import {
  baseURL,
  behindBalancer,
  instanceEnv,
  instancePorts,
  maildevPort,
  maildevURL,
  oidcIssuer,
  oidcPort,
  port,
  serverEnv,
  smtpPort,
} from './server-env';

// The one client of the test OpenID provider: the app's settings for it are in serverEnv.
const oidcClients = JSON.stringify([
  {
    client_id: 'jwt-auth-test',
    client_secret: 'test-secret',
    redirect_uris: [`${baseURL}/api/auth/oidc/test/callback`],
  },
]);

// The suite starts maildev, the test OpenID provider and the release build itself (built by
// `LEPTOS_HASH_FILES=true cargo leptos build --release --split --lib-features split --precompress`,
// as the README says),
// on private ports with a fresh SQLite database and key
// files in a temp folder (see server-env.ts).
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
  webServer: behindBalancer ? balancedServers() : servers(),
});

function maildev() {
  return {
    command: `node scripts/maildev.cjs ${smtpPort} ${maildevPort}`,
    url: `${maildevURL}/email`,
    reuseExistingServer: false,
    timeout: 30_000,
  };
}

function servers() {
  return [
    maildev(),
    {
      // Before the app, which may read the provider's discovery document as it starts.
      command: `node scripts/oidc-provider.cjs ${oidcPort} '${oidcClients}'`,
      url: `${oidcIssuer}/.well-known/openid-configuration`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      // E2E_SERVER=target/debug/server runs the suite against `cargo leptos build` (faster
      // to rebuild while working on the browser side); CI always uses the release build.
      command: process.env.E2E_SERVER ?? 'target/release/server',
      cwd: '..',
      url: `http://127.0.0.1:${port}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe' as const,
      stderr: 'pipe' as const,
      env: serverEnv,
    },
  ];
}

/** Two release instances on one PostgreSQL database, and nginx in front (E2E_LB). */
function balancedServers() {
  const instances = instancePorts.map((instancePort) => ({
    command: process.env.E2E_SERVER ?? 'target/release/server',
    cwd: '..',
    url: `http://127.0.0.1:${instancePort}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe' as const,
    stderr: 'pipe' as const,
    env: instanceEnv(instancePort),
  }));
  return [
    maildev(),
    ...instances,
    {
      command: `node scripts/nginx.cjs ${port} ${instancePorts.join(' ')}`,
      url: `http://127.0.0.1:${port}/readyz`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
  ];
}
