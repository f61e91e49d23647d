import type { BrowserContext, Page } from '@playwright/test';
import { test, expect, register, uniqueEmail } from './fixtures';

/** Opens `count` more tabs of the context on /account, each showing the person's data. */
async function moreTabs(context: BrowserContext, count: number): Promise<Page[]> {
  const pages: Page[] = [];
  for (let i = 0; i < count; i++) {
    const page = await context.newPage();
    await page.goto('/account');
    await expect(page.getByTestId('account-email')).toBeVisible();
    pages.push(page);
  }
  return pages;
}

test('three tabs reloading at once share at most one refresh', async ({ page, context }) => {
  const email = uniqueEmail();
  await register(page, email);
  const tabs = [page, ...(await moreTabs(context, 2))];
  // Only the reloaded pages' refreshes count: with 2 s tokens the pages before them refresh
  // every second and a half, and one of those may leave just as the reload starts.
  const refreshes: string[] = [];
  await Promise.all(
    tabs.map(async (tab) => {
      await tab.reload({ waitUntil: 'commit' });
      tab.on('request', (r) => r.url().endsWith('/api/auth/refresh') && refreshes.push(r.url()));
    }),
  );
  for (const tab of tabs) {
    await expect(tab.getByTestId('account-email')).toHaveText(email);
  }
  // One tab refreshes and the others take its result; or none does, when a tab that had
  // not unloaded yet answered a reloaded tab's hello with its live token (seen in CI).
  // Never one refresh a tab.
  expect(refreshes.length).toBeLessThanOrEqual(1);
});

test('without Web Locks every tab still recovers, with at most one refresh each', async ({ page, context }) => {
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });
  });
  const email = uniqueEmail();
  await register(page, email);
  const tabs = [page, ...(await moreTabs(context, 2))];
  // Each reloaded page's own refreshes, counted from its reload on: a page before it may
  // refresh ahead of expiry (2 s tokens) just as the reload starts (seen through nginx).
  const refreshes = tabs.map(() => 0);
  await Promise.all(
    tabs.map(async (tab, i) => {
      await tab.reload({ waitUntil: 'commit' });
      tab.on('request', (r) => r.url().endsWith('/api/auth/refresh') && refreshes[i]++);
    }),
  );
  for (const tab of tabs) {
    await expect(tab.getByTestId('account-email')).toHaveText(email);
  }
  // A tab may also take a live token from one that had not unloaded yet, refreshing none.
  for (const count of refreshes) expect(count).toBeLessThanOrEqual(1);
});

test('logout in one tab signs the others out within a second', async ({ page, context }) => {
  await register(page, uniqueEmail());
  const [other, third] = await moreTabs(context, 2);
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  for (const tab of [other, third]) {
    await expect(tab.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible({ timeout: 1_000 });
    await expect(tab).toHaveURL(/\/login\?next=\/account$/, { timeout: 1_000 });
  }
});

test('a sign-in in one tab reaches the others', async ({ page, context }) => {
  await page.goto('/');
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
  const other = await context.newPage();
  await register(other, uniqueEmail(), 'Grace Hopper');
  await expect(page.getByRole('banner').getByRole('link', { name: 'Grace Hopper' })).toBeVisible({ timeout: 1_000 });
});

test('a tab closed while holding the lock does not block the others', async ({ page, context }) => {
  // The first tab adopts the other's session on reload and holds the lock at its next
  // (proactive) refresh, some seconds later.
  test.setTimeout(60_000);
  const email = uniqueEmail();
  await register(page, email);
  const [other] = await moreTabs(context, 1);
  // The first tab's refresh hangs while it holds the lock; then the tab is closed.
  await page.route('**/api/auth/refresh', () => {});
  const holding = page.waitForRequest('**/api/auth/refresh');
  await page.reload({ waitUntil: 'commit' });
  await holding;
  await page.close();
  await other.reload();
  await expect(other.getByTestId('account-email')).toHaveText(email);
});

test('a frozen tab holding the lock is overtaken after the wait', async ({ page, context }) => {
  test.setTimeout(60_000);
  const email = uniqueEmail();
  await register(page, email);
  const [other] = await moreTabs(context, 1);
  await page.route('**/api/auth/refresh', () => {});
  const holding = page.waitForRequest('**/api/auth/refresh');
  await page.reload({ waitUntil: 'commit' });
  await holding;
  const cdp = await context.newCDPSession(page);
  await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
  await other.reload();
  // The lock is stolen after one or two 8 s waits.
  await expect(other.getByTestId('account-email')).toHaveText(email, { timeout: 30_000 });
  await cdp.send('Page.setWebLifecycleState', { state: 'active' });
});
