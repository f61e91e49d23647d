import { test, expect, waitForHydration, uniqueEmail, register, PASSWORD } from './fixtures';
import type { Page } from '@playwright/test';

test('register lands on the account page with the person’s data', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  await expect(page.getByTestId('account-name')).toHaveText('Ada Lovelace');
  await expect(page.getByTestId('account-role')).toHaveText('user');
  const header = page.getByRole('banner');
  await expect(header.getByRole('link', { name: 'Ada Lovelace' })).toBeVisible();
  await expect(header.getByRole('button', { name: 'Log out' })).toBeVisible();
});

test('a reload keeps the person signed in, with no signed-out content first', async ({ page }) => {
  await register(page, uniqueEmail());
  await page.addInitScript(() => {
    const seen = { signedOut: false };
    (window as unknown as { seen: typeof seen }).seen = seen;
    new MutationObserver(() => {
      if (document.querySelector('a[href="/login"], a[href="/register"]')) seen.signedOut = true;
    }).observe(document, { childList: true, subtree: true });
  });
  const response = await page.reload();
  const html = await response!.text();
  expect(html).not.toContain('href="/login"');
  expect(html).toContain('aria-busy="true"');
  await expect(page.getByTestId('account-email')).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { seen: { signedOut: boolean } }).seen.signedOut)).toBe(false);
});

test('no token is readable by script; the cookie is HttpOnly, Secure, Strict', async ({ page, context }) => {
  await register(page, uniqueEmail());
  const readable = await page.evaluate(async () => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
    indexedDb: (await indexedDB.databases()).length,
  }));
  expect(readable).toEqual({ local: 0, session: 0, cookie: '', indexedDb: 0 });

  const cookies = await context.cookies();
  expect(cookies.map((c) => c.name)).toEqual(['refresh_token']);
  const refresh = cookies[0];
  expect(refresh).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/api/auth' });
  expect(refresh.value.length).toBeGreaterThanOrEqual(43);
  const lifetime = refresh.expires - Date.now() / 1000;
  expect(lifetime).toBeGreaterThan(1_209_600 - 300);
  expect(lifetime).toBeLessThanOrEqual(1_209_600 + 5);
});

/** A new person signed in on the home page, whose access token has expired meanwhile. The
 * page's timers are frozen (as a throttled background tab's), so no proactive refresh
 * happens while the 2 s access token (plus 5 s of leeway) expires in real time. */
async function signedInWithExpiredToken(page: Page) {
  await page.clock.install();
  await register(page, uniqueEmail());
  await page.clock.pauseAt(Date.now() + 100);
  await page.getByRole('banner').getByRole('link', { name: 'JWT auth' }).click();
  await expect(page).toHaveURL(/\/$/);
  await page.waitForTimeout(8_000);
}

test('after expiry, concurrent calls share one refresh and the page still shows its data', async ({ page }) => {
  await signedInWithExpiredToken(page);

  const refreshes: string[] = [];
  const me401: string[] = [];
  page.on('request', (r) => r.url().endsWith('/api/auth/refresh') && refreshes.push(r.method()));
  page.on('response', (r) => r.url().endsWith('/api/me') && r.status() === 401 && me401.push(r.url()));
  await page.getByRole('banner').getByRole('link', { name: 'Ada Lovelace' }).click();
  await expect(page.getByTestId('account-name')).toHaveText('Ada Lovelace');
  await expect(page.getByTestId('account-role')).toHaveText('user');
  expect(me401.length).toBeGreaterThanOrEqual(2);
  expect(refreshes).toEqual(['POST']);
  await page.clock.resume();
});

/** The page's refresh requests, and a promise kept once a retried `/api/me` has answered
 * 200: the page then holds the token of the refresh. */
function watchRenewal(page: Page): { refreshes: string[]; tokenTaken: Promise<void> } {
  const refreshes: string[] = [];
  page.on('request', (r) => r.url().endsWith('/api/auth/refresh') && refreshes.push(r.method()));
  const tokenTaken = new Promise<void>((resolve) =>
    page.on('response', (r) => r.url().endsWith('/api/me') && r.status() === 200 && resolve()),
  );
  return { refreshes, tokenTaken };
}

test('a 401 that arrives after the refresh it needed is retried without another refresh', async ({ page }) => {
  await signedInWithExpiredToken(page);

  // The passkeys list's 401 (for the expired token) is held back until the page has taken
  // the token of the refresh the other calls started (a retried /api/me answering 200 is
  // sent only then): a late answer, as on a slow network or a busy tab. The call must then
  // be sent again with the token the page now holds.
  const { refreshes, tokenTaken } = watchRenewal(page);
  const passkeyTokens: string[] = [];
  let heldBack = 0;
  await page.route('**/api/me/passkeys', async (route) => {
    passkeyTokens.push(route.request().headers()['authorization'] ?? '');
    const response = await route.fetch();
    if (response.status() === 401) {
      heldBack += 1;
      await tokenTaken;
    }
    await route.fulfill({ response });
  });
  await page.getByRole('banner').getByRole('link', { name: 'Ada Lovelace' }).click();
  await expect(page.getByTestId('account-name')).toHaveText('Ada Lovelace');
  // The list answered (empty), not an error.
  await expect(page.getByTestId('passkeys')).toBeAttached();
  expect(heldBack).toBe(1);
  // Sent twice: with the expired token, then with the new one.
  expect(passkeyTokens).toHaveLength(2);
  expect(passkeyTokens[1]).not.toEqual(passkeyTokens[0]);
  expect(refreshes).toEqual(['POST']);
  await page.clock.resume();
});

test('a newer token refused too still gets one real refresh, and the person stays signed in', async ({ page }) => {
  await signedInWithExpiredToken(page);

  // The passkeys list's late 401 as above; then its resend with the newer token is refused
  // as well (as a token the server no longer takes would be). One real refresh must follow,
  // not a sign-out.
  const { refreshes, tokenTaken } = watchRenewal(page);
  const passkeyAnswers: number[] = [];
  await page.route('**/api/me/passkeys', async (route) => {
    if (passkeyAnswers.length === 1) {
      passkeyAnswers.push(401);
      await route.fulfill({
        status: 401,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'token_invalid', message: 'The access token is not valid.' } }),
      });
      return;
    }
    const response = await route.fetch();
    passkeyAnswers.push(response.status());
    if (passkeyAnswers.length === 1) await tokenTaken;
    await route.fulfill({ response });
  });
  await page.getByRole('banner').getByRole('link', { name: 'Ada Lovelace' }).click();
  await expect(page.getByTestId('account-name')).toHaveText('Ada Lovelace');
  await expect(page.getByTestId('passkeys')).toBeAttached();
  await expect(page).toHaveURL(/\/account$/);
  expect(passkeyAnswers).toEqual([401, 401, 200]);
  expect(refreshes).toEqual(['POST', 'POST']);
  await page.clock.resume();
});

test('a deleted refresh cookie leads to the login page', async ({ page, context }) => {
  await register(page, uniqueEmail());
  await context.clearCookies();
  await page.reload();
  await expect(page).toHaveURL(/\/login\?next=\/account$/);
  await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
});

test('logout signs the person out here and on the server', async ({ page, context }) => {
  await register(page, uniqueEmail());
  const header = page.getByRole('banner');
  await header.getByRole('button', { name: 'Log out' }).click();
  await expect(header.getByRole('link', { name: 'Log in' })).toBeVisible();
  await expect(page).toHaveURL(/\/$/);
  expect(await context.cookies()).toEqual([]);
  await page.goto('/account');
  await expect(page).toHaveURL(/\/login\?next=\/account$/);
});

test('login errors are shown in text, tied to their fields', async ({ page }) => {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill('nobody@example.com');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByLabel('Password').press('Enter');
  await expect(page.getByRole('alert')).toHaveText('The email or password is not correct.');

  await page.getByLabel('Email').fill('not an email');
  await page.getByRole('button', { name: 'Log in' }).click();
  const email = page.getByLabel('Email');
  await expect(email).toHaveAttribute('aria-invalid', 'true');
  const describedBy = await email.getAttribute('aria-describedby');
  await expect(page.locator(`#${describedBy}`)).toHaveText('Enter a valid email address.');
  await expect(page.getByRole('alert')).toHaveText('Some fields are not valid.');
});

test('the button is disabled while its request is in flight', async ({ page }) => {
  await page.goto('/login');
  await waitForHydration(page);
  await page.route('**/api/auth/login', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    await route.continue();
  });
  await page.getByLabel('Email').fill('nobody@example.com');
  await page.getByLabel('Password').fill('wrong password');
  const button = page.getByRole('button', { name: 'Log in' });
  await button.click();
  await expect(button).toBeDisabled();
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(button).toBeEnabled();
});

test('next= is honoured for same-site paths and open redirects are refused', async ({ page, context }) => {
  const email = uniqueEmail();
  await register(page, email);
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();

  const cases: [string, RegExp][] = [
    ['/account?tab=profile', /\/account\?tab=profile$/],
    ['//evil.example', /localhost:\d+\/account$/],
    ['https://evil.example/', /localhost:\d+\/account$/],
    ['/%5Cevil.example', /localhost:\d+\/account$/],
  ];
  for (const [next, expected] of cases) {
    await context.clearCookies();
    await page.goto(`/login?next=${encodeURIComponent(next)}`);
    await waitForHydration(page);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect(page).toHaveURL(expected);
    await expect(page.getByTestId('account-email')).toHaveText(email);
  }
});

test('next= is read from the address after an in-app visit to the same page by another path', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
  await page.goto('/login');
  await waitForHydration(page);
  // A link on the page to the same page, by its path with a trailing slash and a next=:
  // the router takes it in the page, without a reload.
  await page.evaluate(() => {
    (window as unknown as { notReloaded: boolean }).notReloaded = true;
    const link = document.createElement('a');
    link.href = '/login/?next=/account/sessions';
    link.textContent = 'the same page';
    document.querySelector('main')!.append(link);
  });
  await page.getByRole('link', { name: 'the same page' }).click();
  await expect(page).toHaveURL(/\/login\/\?next=\/account\/sessions$/);
  await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/account\/sessions$/);
});

test('the access token is refreshed before it expires', async ({ page }) => {
  const refreshes: number[] = [];
  page.on('request', (r) => r.url().endsWith('/api/auth/refresh') && refreshes.push(Date.now()));
  await register(page, uniqueEmail());
  // 75–85 % of the 2 s lifetime, with nothing asked of the page.
  await expect.poll(() => refreshes.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
  await page.waitForTimeout(8_000);
  const expired: string[] = [];
  page.on('response', (r) => r.status() === 401 && expired.push(r.url()));
  await page.getByRole('banner').getByRole('link', { name: 'JWT auth' }).click();
  await page.getByRole('banner').getByRole('link', { name: 'Ada Lovelace' }).click();
  await expect(page.getByTestId('account-email')).toBeVisible();
  expect(expired).toEqual([]);
});

test('a tab coming back to sight, or online, catches up at once', async ({ page }) => {
  await page.clock.install();
  await register(page, uniqueEmail());
  // Every panel has its data, so no call is in flight below.
  await expect(page.getByTestId('account-role')).toBeVisible();
  await expect(page.getByText('Member since')).toBeVisible();
  await page.clock.pauseAt(Date.now() + 100);
  const refreshes: string[] = [];
  page.on('request', (r) => r.url().endsWith('/api/auth/refresh') && refreshes.push(r.url()));
  const refreshed = () => page.waitForResponse((r) => r.url().endsWith('/api/auth/refresh'));

  // The laptop slept: the page's clock jumps, its timers did not run.
  await page.clock.setSystemTime(Date.now() + 60_000);
  let answered = refreshed();
  await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange', { bubbles: true })));
  expect((await answered).status()).toBe(200);
  expect(refreshes).toHaveLength(1);

  await page.clock.setSystemTime(Date.now() + 120_000);
  // The network comes back. The runtime listens only to the window's `online` event, so the
  // test sends it (twice: two at once make one refresh). Emulating the loss of the network
  // with `context.setOffline` made this test fail about once in twenty full runs, always
  // while waiting for this refresh's answer (Chromium's own event not delivered, or the
  // first request after it never answered), never in a run of the test alone.
  answered = refreshed();
  await page.evaluate(() => {
    window.dispatchEvent(new Event('online'));
    window.dispatchEvent(new Event('online'));
  });
  expect((await answered).status()).toBe(200);
  expect(refreshes).toHaveLength(2);
  await page.clock.resume();
});

test('reload to the account page showing the person’s data (performance mark)', async ({ page }) => {
  await register(page, uniqueEmail());
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    await page.reload();
    await expect(page.getByTestId('account-email')).toBeVisible();
    const shown = await page.evaluate(
      () => performance.getEntriesByName('account-data-shown', 'mark')[0]?.startTime ?? -1,
    );
    expect(shown).toBeGreaterThan(0);
    samples.push(shown);
  }
  samples.sort((a, b) => a - b);
  // A figure for the report, not a timed assertion.
  console.log(`reload → account data shown: median ${samples[2].toFixed(0)} ms (samples ${samples.map((s) => s.toFixed(0)).join(', ')})`);
});

test('a token refresh does not reload the page’s data', async ({ page }) => {
  await register(page, uniqueEmail());
  await expect(page.getByTestId('account-role')).toBeVisible();
  await expect(page.getByText('Member since')).toBeVisible();
  const calls: string[] = [];
  page.on('request', (r) => r.url().endsWith('/api/me') && calls.push(r.url()));
  // The 2 s token is refreshed proactively at least twice meanwhile.
  const refreshed = page.waitForResponse((r) => r.url().endsWith('/api/auth/refresh'));
  await refreshed;
  await page.waitForTimeout(2_000);
  expect(calls).toEqual([]);
  await expect(page.getByTestId('account-email')).toBeVisible();
});
