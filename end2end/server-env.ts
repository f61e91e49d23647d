import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Ports: `cargo xtask test` picks free ones; run alone, 3917 and the three after it.
export const port = Number(process.env.E2E_PORT ?? 3917);
export const smtpPort = Number(process.env.E2E_SMTP_PORT ?? port + 1);
export const maildevPort = Number(process.env.E2E_MAILDEV_PORT ?? port + 2);
export const oidcPort = Number(process.env.E2E_OIDC_PORT ?? port + 3);
// `localhost`, not an IP address: passkeys need a host name (the WebAuthn relying party id
// is PUBLIC_URL's host). The server still listens on 127.0.0.1 only.
export const baseURL = `http://localhost:${port}`;
// E2E_LB=1: the suite goes through nginx on E2E_PORT to two release instances on
// E2E_LB_PORTS (two ports) sharing the PostgreSQL database E2E_DATABASE_URL.
export const behindBalancer = !!process.env.E2E_LB;
export const instancePorts = (process.env.E2E_LB_PORTS ?? `${port + 4},${port + 5}`)
  .split(',')
  .map(Number);
export const maildevURL = `http://127.0.0.1:${maildevPort}`;
// The test OpenID provider (scripts/oidc-provider.cjs): its issuer, exactly, no trailing slash.
export const oidcIssuer = `http://127.0.0.1:${oidcPort}`;

// Set once in the main process; workers inherit it.
process.env.E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), 'jwt-auth-e2e-'));
const dataDir = process.env.E2E_DATA_DIR;

/** The release server's settings: the suite's server, and the admin CLI the tests run. */
export const serverEnv: Record<string, string> = {
  LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
  LEPTOS_SITE_ROOT: 'target/site',
  PUBLIC_URL: baseURL,
  DATABASE_URL: `sqlite://${dataDir}/e2e.db`,
  AUTH_KEY_FILE: `${dataDir}/jwt-ed25519.pem`,
  AUTH_SECRET_FILE: `${dataDir}/secret.key`,
  RATE_LIMIT_ENABLED: 'false',
  // Short-lived access tokens, so the suite sees them expire (plus the 5 s leeway).
  AUTH_ACCESS_TTL_SECS: '2',
  // Mail goes to maildev, which the tests read.
  SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
  MAIL_FROM: 'JWT Auth <no-reply@example.com>',
  // Sign-in with the test OpenID provider (its client is registered in playwright.config.ts).
  OIDC_PROVIDERS: 'test',
  OIDC_TEST_ISSUER: oidcIssuer,
  OIDC_TEST_CLIENT_ID: 'jwt-auth-test',
  OIDC_TEST_CLIENT_SECRET: 'test-secret',
  OIDC_TEST_NAME: 'Test ID',
  RUST_LOG: 'warn',
};

/** The settings of each instance behind the balancer: one database, one secret file, one
 * public URL (the balancer's, also their tokens' issuer and audience), the balancer a
 * trusted proxy. */
export function instanceEnv(instancePort: number): Record<string, string> {
  const env: Record<string, string> = {
    ...serverEnv,
    LEPTOS_SITE_ADDR: `127.0.0.1:${instancePort}`,
    PUBLIC_URL: baseURL,
    DATABASE_URL: process.env.E2E_DATABASE_URL ?? '',
    TRUSTED_PROXIES: '127.0.0.1',
    OIDC_PROVIDERS: '',
  };
  for (const name of Object.keys(env)) if (name.startsWith('OIDC_TEST_')) delete env[name];
  return env;
}
