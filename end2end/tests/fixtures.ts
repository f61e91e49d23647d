import { test as base, expect, type CDPSession, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { maildevURL, serverEnv } from '../server-env';

/**
 * The API's 4xx answers, which the auth runtime handles and the pages show, but which
 * Chromium still logs as "Failed to load resource": a signed-out visitor's silent restore
 * (401 from refresh), an expired access token (401, answered by one refresh and a retry),
 * a wrong password or an invalid field. Any 5xx, and any failure of a page or a static
 * file, still fails the test.
 */
function handled(message: { text(): string; location(): { url: string } }) {
  return (
    /^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text()) &&
    /\/api\//.test(new URL(message.location().url).pathname)
  );
}

/**
 * Every test fails on any other browser console error or uncaught page error (CSP included).
 * A test that makes requests fail on purpose (a 503, a dropped connection) says which
 * console errors it expects with `allowConsoleErrors(/…/)`.
 */
export const test = base.extend<{ consoleErrors: string[]; allowConsoleErrors: (pattern: RegExp) => void }>({
  allowConsoleErrors: async ({}, use) => {
    await use((pattern) => expected.push(pattern));
  },
  consoleErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' && !handled(message)) {
          errors.push(`${message.text()} (${message.location().url})`);
        }
      });
      page.on('pageerror', (error) => errors.push(error.message));
      expected.length = 0;
      await use(errors);
      const unexpected = errors.filter((e) => !expected.some((pattern) => pattern.test(e)));
      expect(unexpected, 'browser console errors').toEqual([]);
    },
    { auto: true },
  ],
});

/** Console errors the running test expects (reset for every test). */
const expected: RegExp[] = [];

export { expect };

/** Waits until the WASM app has hydrated the server-rendered page. */
export async function waitForHydration(page: Page) {
  await expect(page.locator('.app[data-hydrated="true"]')).toBeAttached();
}

let counter = 0;
export function uniqueEmail() {
  counter += 1;
  return `person-${Date.now()}-${process.pid}-${counter}@example.com`;
}

export const PASSWORD = 'correct horse battery';

/** Registers through the page and waits for the account page. */
export async function register(page: Page, email: string, name = 'Ada Lovelace') {
  await page.goto('/register');
  await waitForHydration(page);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('account-email')).toHaveText(email);
}

/** A message as maildev's HTTP API lists it. */
export interface Mail {
  subject: string;
  text: string;
  to: { address: string }[];
}

/** Waits for a message to `to` whose subject matches, read from maildev. */
export async function waitForMail(to: string, subject: RegExp): Promise<Mail> {
  let found: Mail | undefined;
  await expect
    .poll(
      async () => {
        const all = (await (await fetch(`${maildevURL}/email`)).json()) as Mail[];
        found = all.find(
          (m) => m.to.some((a) => a.address.toLowerCase() === to.toLowerCase()) && subject.test(m.subject),
        );
        return found !== undefined;
      },
      { message: `a message "${subject}" to ${to}`, timeout: 10_000 },
    )
    .toBe(true);
  return found!;
}

/** Runs the server's command line (e.g. `admin create`) against the suite's database. */
export function serverCli(args: string[], input = ''): string {
  return execFileSync(process.env.E2E_SERVER ?? 'target/release/server', args, {
    cwd: '..',
    env: { ...process.env, ...serverEnv },
    input,
    encoding: 'utf8',
  });
}

/** Logs in through the page and waits for the account page. */
export async function logIn(page: Page, email: string, password = PASSWORD) {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('account-email')).toHaveText(email);
}

/** Verifies `email`'s address with the code mailed at registration, through the page. */
export async function verifyEmail(page: Page, email: string) {
  const mail = await waitForMail(email, /^Your verification code$/);
  const code = mail.text.match(/Your verification code is (\d{6})/)?.[1] ?? '';
  await page.goto('/verify-email');
  await waitForHydration(page);
  await page.getByLabel('Code').fill(code);
  await page.getByRole('button', { name: 'Verify email' }).click();
  await expect(page.getByTestId('account-verified')).toHaveText('yes');
}

/** RFC 4648 base32 (the authenticator secret's form) to bytes. */
function base32(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    value = ((value << 5) | alphabet.indexOf(c)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

/**
 * What an authenticator app shows for `secret` (base32) at `unixSecs`: RFC 6238 with SHA-1,
 * 6 digits, 30-second steps.
 */
export function totp(secret: string, unixSecs = Date.now() / 1000): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSecs / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n =
    ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

/** Turns two-step sign-in on from the account page: the secret and the recovery codes. */
export async function setUp(page: Page): Promise<{ secret: string; codes: string[] }> {
  const section = page.getByRole('region', { name: 'Two-step sign-in' });
  await section.getByRole('button', { name: 'Set up authenticator app' }).click();
  await expect(section.getByRole('img', { name: 'QR code for your authenticator app' })).toBeVisible();
  await expect(section.locator('.qr svg')).toBeVisible();
  const secret = (await section.getByTestId('totp-secret').textContent()) ?? '';
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  await section.getByLabel('Code', { exact: true }).fill(totp(secret));
  await section.getByRole('button', { name: 'Confirm' }).click();
  const list = section.getByTestId('recovery-codes').getByRole('listitem');
  await expect(list).toHaveCount(10);
  const codes = (await list.allTextContents()).map((c) => c.trim());
  // The codes as a text file.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    section.getByRole('link', { name: 'Download' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('recovery-codes.txt');
  const file = readFileSync((await download.path())!, 'utf8');
  for (const code of codes) expect(file).toContain(code);
  await section.getByRole('button', { name: 'Done' }).click();
  await expect(section.getByTestId('two-step-status')).toHaveText(
    'Two-step sign-in is on. 10 recovery codes left.',
  );
  return { secret, codes };
}

export async function logOut(page: Page) {
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
}


/**
 * A platform authenticator for `page`: Chromium's virtual one (DevTools protocol), holding
 * discoverable credentials and verifying its user (as a screen lock would) without asking.
 */
export async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}
