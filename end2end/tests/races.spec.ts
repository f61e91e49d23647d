import type { Page, Route } from '@playwright/test';
import { test, expect, register, uniqueEmail, waitForHydration, PASSWORD } from './fixtures';

/** Holds the answers of `pattern` until `release()`: the request reaches the server at once. */
async function holdAnswers(page: Page, pattern: string) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const held: string[] = [];
  await page.route(pattern, async (route: Route) => {
    held.push(route.request().url());
    const response = await route.fetch();
    await gate;
    await route.fulfill({ response });
  });
  return { held, release };
}

const header = (page: Page) => page.getByRole('banner');

/**
 * Records, in the page, every person the header shows by name from now on (the link to
 * /account carries the name), and whether it showed "Log in" at some point.
 */
async function watchHeader(page: Page) {
  await page.evaluate(() => {
    const seen = { names: [] as string[], signedOut: false, signedInAfterOut: false };
    (window as unknown as { headerSeen: typeof seen }).headerSeen = seen;
    const look = () => {
      const name = document.querySelector('header a.user-name')?.textContent ?? null;
      const out = document.querySelector('header a[href="/login"]') !== null;
      if (name && seen.names[seen.names.length - 1] !== name) seen.names.push(name);
      if (out) seen.signedOut = true;
      if (name && seen.signedOut) seen.signedInAfterOut = true;
    };
    look();
    new MutationObserver(look).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

async function headerSeen(page: Page) {
  return page.evaluate(
    () =>
      (window as unknown as { headerSeen: { names: string[]; signedOut: boolean; signedInAfterOut: boolean } })
        .headerSeen,
  );
}

test('a refresh answered after "Log out" does not sign the person back in', async ({ page }) => {
  await register(page, uniqueEmail());
  // Access tokens live 2 s here: the proactive refresh comes within two seconds.
  const refresh = await holdAnswers(page, '**/api/auth/refresh');
  await expect.poll(() => refresh.held.length, { timeout: 5_000 }).toBeGreaterThan(0);
  await watchHeader(page);
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await page.waitForTimeout(1_000);
  refresh.release();
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
  await page.waitForTimeout(1_500);
  const seen = await headerSeen(page);
  expect(seen.signedOut).toBe(true);
  expect(seen.signedInAfterOut, 'signed in again after the sign-out').toBe(false);
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await page.reload();
  await waitForHydration(page);
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
});

test('person A’s late refresh is not shown after person B signed in', async ({ page }) => {
  const ada = uniqueEmail();
  const bob = uniqueEmail();
  await register(page, bob, 'Bob Example');
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
  await register(page, ada, 'Ada Lovelace');
  // Bob's sign-in form open in a second tab of the same browser.
  const second = await page.context().newPage();
  await second.goto('/login');
  await waitForHydration(second);
  await second.getByLabel('Email').fill(bob);
  await second.getByLabel('Password').fill(PASSWORD);
  const refresh = await holdAnswers(page, '**/api/auth/refresh');
  await expect.poll(() => refresh.held.length, { timeout: 5_000 }).toBeGreaterThan(0);
  await watchHeader(page);
  // Bob signs in while Ada's refresh answer is on its way.
  await second.getByRole('button', { name: 'Log in' }).click();
  await page.waitForTimeout(2_000);
  refresh.release();
  await expect(second.getByTestId('account-email')).toHaveText(bob, { timeout: 10_000 });
  await expect(header(page).getByRole('link', { name: 'Bob Example' })).toBeVisible();
  await page.waitForTimeout(1_000);
  const seen = await headerSeen(page);
  expect(seen.names.slice(seen.names.indexOf('Bob Example')), 'after Bob, only Bob').toEqual(['Bob Example']);
  // The page itself reloaded its data for the new person.
  await expect(page.getByTestId('account-email')).toHaveText(bob);
  await expect(page.getByTestId('account-name')).toHaveText('Bob Example');
  await expect(header(second).getByRole('link', { name: 'Bob Example' })).toBeVisible();
});

test('a logout that does not reach the server says so and keeps the person signed in', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(/net::ERR_FAILED.*\/api\/auth\/logout/);
  await register(page, uniqueEmail());
  await page.route('**/api/auth/logout', (route) => route.abort('failed'));
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('alert')).toContainText('still signed in', { timeout: 10_000 });
  await expect(header(page).getByRole('button', { name: 'Log out' })).toBeEnabled();
  await expect(header(page).getByRole('link', { name: 'Log in' })).toHaveCount(0);
  // Once the server answers, the sign-out happens.
  await page.unroute('**/api/auth/logout');
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
  await page.reload();
  await waitForHydration(page);
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
});

test('a silent restore that meets a 503 reconnects instead of signing the person out', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(/status of 503/);
  const email = uniqueEmail();
  await register(page, email);
  let refused = 0;
  let armed = false;
  await page.route('**/api/auth/refresh', async (route) => {
    // Only the reloaded page's refreshes: not a proactive one of the page before.
    if (armed && refused < 2) {
      refused += 1;
      await route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'overloaded', message: 'The server is busy.' } }),
      });
    } else {
      await route.continue();
    }
  });
  const reloaded = page.reload();
  armed = true;
  await reloaded;
  await waitForHydration(page);
  await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toBeVisible();
  await expect(page).toHaveURL(/\/account$/);
  // Retried with backoff (1 s, then 2 s): the person is back without doing anything.
  await expect(page.getByTestId('account-email')).toHaveText(email, { timeout: 10_000 });
  await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toHaveCount(0);
  expect(refused).toBe(2);
});

test('every API answer about the person is marked no-store', async ({ page }) => {
  await register(page, uniqueEmail());
  const headers = await page.evaluate(async () => {
    const session = await (await fetch('/api/auth/refresh', { method: 'POST' })).json();
    const auth = { Authorization: `Bearer ${session.access_token}` };
    const seen: Record<string, string | null> = {};
    for (const path of ['/api/me', '/api/sessions']) {
      seen[path] = (await fetch(path, { headers: auth })).headers.get('cache-control');
    }
    return seen;
  });
  expect(headers).toEqual({ '/api/me': 'no-store', '/api/sessions': 'no-store' });
});

test('a refresh that is never answered does not hold "Log out" for ever', async ({ page, allowConsoleErrors }) => {
  allowConsoleErrors(/ERR_|Failed to load resource.*\/api\/auth\/refresh/);
  await register(page, uniqueEmail());
  // The proactive refresh goes out and its answer never comes.
  let asked = 0;
  await page.route('**/api/auth/refresh', () => {
    asked += 1;
  });
  await expect.poll(() => asked, { timeout: 5_000 }).toBeGreaterThan(0);
  await header(page).getByRole('button', { name: 'Log out' }).click();
  // The runtime gives a request up after 10 s; the sign-out then goes through.
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible({ timeout: 20_000 });
});

test('a tab robbed of the lock waits for its own refresh: two refreshes, not four', async ({ page, context }) => {
  await register(page, uniqueEmail());
  const second = await context.newPage();
  await second.goto('/account');
  await expect(second.getByTestId('account-email')).toBeVisible();
  // Every refresh answer of both tabs is held 5 s: the first tab keeps the lock with its
  // request out; the second waits 3 s for the lock, then steals it and refreshes.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let seen = 0;
  await context.route('**/api/auth/refresh', async (route) => {
    seen += 1;
    const response = await route.fetch();
    await gate;
    await route.fulfill({ response });
  });
  await expect.poll(() => seen, { timeout: 5_000 }).toBeGreaterThan(0);
  await page.waitForTimeout(5_000);
  const during = seen;
  release();
  await expect(page.getByTestId('account-email')).toBeVisible();
  await expect(second.getByTestId('account-email')).toBeVisible();
  // The robbed tab did not take the lock back for a second request of its own.
  expect(during).toBe(2);
});

for (const [what, refuse] of [
  ['a dropped connection', (route: Route) => route.abort('connectionreset')],
  [
    'a 429',
    (route: Route) =>
      route.fulfill({
        status: 429,
        headers: { 'retry-after': '1' },
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'rate_limited', message: 'Too many attempts.' } }),
      }),
  ],
] as const) {
  test(`a refresh of a signed-in tab that meets ${what} keeps the person signed in and reconnects`, async ({
    page,
    allowConsoleErrors,
  }) => {
    allowConsoleErrors(/ERR_CONNECTION_RESET|status of 429/);
    const email = uniqueEmail();
    await register(page, email);
    let refused = 0;
    await page.route('**/api/auth/refresh', async (route) => {
      if (refused < 2) {
        refused += 1;
        await refuse(route);
      } else {
        await route.continue();
      }
    });
    // The proactive refresh (2 s tokens) meets the trouble twice, then the server again.
    await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toBeVisible({ timeout: 5_000 });
    await expect(page.getByRole('banner').getByRole('button', { name: 'Log out' })).toBeVisible();
    await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toHaveCount(0, { timeout: 10_000 });
    await expect(page).toHaveURL(/\/account$/);
    await expect(page.getByTestId('account-email')).toHaveText(email);
    expect(refused).toBe(2);
  });
}

test('a sign-out retry never signs out someone who signed in meanwhile', async ({ page, context, allowConsoleErrors }) => {
  allowConsoleErrors(/net::ERR_FAILED.*\/api\/auth\/logout/);
  const bob = uniqueEmail();
  await register(page, bob, 'Bob Example');
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
  await register(page, uniqueEmail(), 'Ada Lovelace');
  // Ada's first sign-out fails; during the pause before its retry, Bob signs in in another tab.
  let aborted = 0;
  await page.route('**/api/auth/logout', async (route) => {
    if (aborted === 0) {
      aborted += 1;
      await route.abort('failed');
    } else {
      await route.continue();
    }
  });
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('alert')).toContainText('Retrying');
  const second = await context.newPage();
  await second.goto('/login');
  await waitForHydration(second);
  await second.getByLabel('Email').fill(bob);
  await second.getByLabel('Password').fill(PASSWORD);
  await second.getByRole('button', { name: 'Log in' }).click();
  await expect(second.getByTestId('account-email')).toHaveText(bob);
  await page.waitForTimeout(3_000);
  await expect(header(second).getByRole('link', { name: 'Bob Example' })).toBeVisible();
  await second.reload();
  await expect(second.getByTestId('account-email')).toHaveText(bob);
});
