import { test as base, expect, type Page } from '@playwright/test';

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

/** Every test fails on any other browser console error or uncaught page error (CSP included). */
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' && !handled(message)) {
          errors.push(`${message.text()} (${message.location().url})`);
        }
      });
      page.on('pageerror', (error) => errors.push(error.message));
      await use(errors);
      expect(errors, 'browser console errors').toEqual([]);
    },
    { auto: true },
  ],
});

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
