import { test as base, expect } from '@playwright/test';

/** Every test fails on any browser console error or uncaught page error (CSP violations included). */
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
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
export async function waitForHydration(page: import('@playwright/test').Page) {
  await expect(page.locator('.app[data-hydrated="true"]')).toBeAttached();
}
