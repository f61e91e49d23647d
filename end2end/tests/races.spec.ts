import type { BrowserContext, Page, Route } from '@playwright/test';
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
 * Sends the browser's refresh request to the server from here (its cookie and origin): the
 * server rotates the cookie, and the browser never sees the answer.
 */
async function refreshOutOfSight(route: Route) {
  const request = route.request();
  const sent = await request.allHeaders();
  const headers: Record<string, string> = {};
  for (const name of ['cookie', 'origin', 'user-agent']) {
    if (sent[name]) headers[name] = sent[name];
  }
  const answer = await fetch(request.url(), { method: 'POST', headers });
  expect(answer.status).toBe(200);
}

/** Bob registered and signed out, then Ada registered and signed in, in `page`. */
async function bobThenAda(page: Page) {
  const ada = uniqueEmail();
  const bob = uniqueEmail();
  await register(page, bob, 'Bob Example');
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
  await register(page, ada, 'Ada Lovelace');
  return { ada, bob };
}

/** The login page in `page`, filled in for `email`, not yet sent. */
async function loginFilled(page: Page, email: string) {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
}

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
  const { ada, bob } = await bobThenAda(page);
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
  // The runtime gives a request up after 7 s; the sign-out then goes through.
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible({ timeout: 20_000 });
});

/**
 * Three tabs of one person, then every refresh answer held until `releaseAndWait()`, which
 * then waits until every tab shows the person signed in; `seen()` counts the refreshes.
 */
async function threeTabsRefreshHeld(page: Page, context: BrowserContext) {
  await register(page, uniqueEmail());
  const tabs = [page, await context.newPage(), await context.newPage()];
  for (const other of tabs.slice(1)) {
    await other.goto('/account');
    await expect(other.getByTestId('account-email')).toBeVisible();
  }
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const asked: number[] = [];
  let releasedAt = 0;
  await context.route('**/api/auth/refresh', async (route) => {
    asked.push(Date.now());
    const response = await route.fetch();
    await gate;
    await route.fulfill({ response });
  });
  await expect.poll(() => asked.length, { timeout: 5_000 }).toBeGreaterThan(0);
  return {
    seen: () => asked.length,
    /** The refreshes asked for before `ms` after the release. */
    seenWithin: (ms: number) => asked.filter((at) => at < releasedAt + ms).length,
    releasedAt: () => releasedAt,
    releaseAndWait: async () => {
      releasedAt = Date.now();
      release();
      for (const tab of tabs) {
        await expect(tab.getByTestId('account-email')).toBeVisible();
        await expect(header(tab).getByRole('button', { name: 'Log out' })).toBeVisible();
      }
    },
  };
}

test('a slow refresh is not repeated by the other tabs: one request for three tabs', async ({ page, context }) => {
  const held = await threeTabsRefreshHeld(page, context);
  // Every refresh answer is held 5.5 s: the first tab keeps the lock with its request out,
  // and the others, due for their own refresh meanwhile, wait for it rather than take the
  // lock and ask again.
  await page.waitForTimeout(5_500);
  const during = held.seen();
  await held.releaseAndWait();
  expect(during).toBe(1);
});

test('tabs queued behind a refresh take its token, even when its message comes after the lock', async ({
  page,
  context,
}) => {
  // Tabs hear each other's messages 50 ms late, while the refresh lock passes at once: the
  // lock and the message travel apart between tabs, and the lock can come first.
  await context.addInitScript(() => {
    const Channel = window.BroadcastChannel;
    const late = window as unknown as { lateMessages: number };
    late.lateMessages = 0;
    window.BroadcastChannel = class extends Channel {
      set onmessage(handler: ((event: MessageEvent) => void) | null) {
        super.onmessage =
          handler &&
          ((event: MessageEvent) =>
            setTimeout(() => {
              late.lateMessages += 1;
              handler.call(this, event);
            }, 50));
      }
      get onmessage() {
        return super.onmessage;
      }
    };
  });
  const held = await threeTabsRefreshHeld(page, context);
  // The first refresh's answer is held until every tab has fallen due (tokens last 2 s)
  // and waits for the lock behind it.
  await page.waitForTimeout(2_500);
  expect(held.seen()).toBe(1);
  await held.releaseAndWait();
  // The queued tabs wait for the first tab's message and take its session rather than
  // rotate the cookie again: no other refresh within a second of the release (the next
  // proactive refresh is due 1.5 s after the new token).
  await page.waitForTimeout(Math.max(0, held.releasedAt() + 1_000 - Date.now()));
  expect(held.seenWithin(1_000)).toBe(1);
  // The messages did come late: the runtime reads them through `onmessage`.
  for (const tab of context.pages()) {
    expect(await tab.evaluate(() => (window as unknown as { lateMessages: number }).lateMessages)).toBeGreaterThan(0);
  }
});

test('a slow refresh in another tab cannot erase a new sign-in with its late answer', async ({ page, context }) => {
  const email = uniqueEmail();
  await register(page, email);
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  // A second tab's silent restore holds the refresh lock; its answer (no session, and the
  // cookie cleared) comes 5 s later.
  const second = await context.newPage();
  let asked = 0;
  await second.route('**/api/auth/refresh', async (route) => {
    asked += 1;
    // Only the restore: the tab's later refreshes (of the new sign-in) reach the server.
    if (asked > 1) {
      await route.continue();
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await route.fulfill({
      status: 401,
      contentType: 'application/json',
      headers: { 'set-cookie': 'refresh_token=; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age=0' },
      body: JSON.stringify({ error: { code: 'refresh_missing', message: 'No session.' } }),
    });
  });
  await second.goto('/login');
  await expect.poll(() => asked, { timeout: 5_000 }).toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('account-email')).toHaveText(email, { timeout: 15_000 });
  // By now the other tab's answer has landed: the new sign-in's cookie must have survived it.
  await page.waitForTimeout(6_000);
  await page.reload();
  await expect(page.getByTestId('account-email')).toHaveText(email);
});

test('a slow sign-in is not overtaken by the tab’s own refresh of the person before', async ({ page }) => {
  const { ada, bob } = await bobThenAda(page);
  // Ada, still signed in, signs in as Bob. Bob's login takes 5 s to reach the server, and
  // meanwhile Ada's proactive refresh (2 s tokens) comes due; its answer is held.
  await loginFilled(page, bob);
  await page.route('**/api/auth/login', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await route.continue();
  });
  const refresh = await holdAnswers(page, '**/api/auth/refresh');
  await watchHeader(page);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('account-email')).toHaveText(bob, { timeout: 15_000 });
  await page.waitForTimeout(2_000);
  refresh.release();
  await page.waitForTimeout(1_500);
  const seen = await headerSeen(page);
  expect(seen.names.slice(seen.names.indexOf('Bob Example')), 'after Bob, only Bob').toEqual(['Bob Example']);
  await expect(page.getByTestId('account-email')).toHaveText(bob);
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await page.reload();
  await expect(page.getByTestId('account-email')).toHaveText(bob);
});

test('a refresh answered 429 is retried no sooner than its Retry-After', async ({ page, allowConsoleErrors }) => {
  allowConsoleErrors(/status of 429/);
  const email = uniqueEmail();
  await register(page, email);
  const asked: number[] = [];
  await page.route('**/api/auth/refresh', async (route) => {
    asked.push(Date.now());
    if (asked.length === 1) {
      await route.fulfill({
        status: 429,
        headers: { 'retry-after': '4' },
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'rate_limited', message: 'Too many attempts.' } }),
      });
    } else {
      await route.continue();
    }
  });
  await expect.poll(() => asked.length, { timeout: 12_000 }).toBeGreaterThan(1);
  // The backoff alone would have tried again within a second.
  expect(asked[1] - asked[0]).toBeGreaterThanOrEqual(3_900);
  await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toHaveCount(0);
  await expect(page.getByTestId('account-email')).toHaveText(email);
});

test('tabs that cannot reach the server retry as one, and all come back', async ({
  page,
  context,
  allowConsoleErrors,
}) => {
  test.setTimeout(60_000);
  allowConsoleErrors(/status of 503/);
  const email = uniqueEmail();
  await register(page, email);
  const others = [await context.newPage(), await context.newPage()];
  for (const other of others) {
    await other.goto('/account');
    await expect(other.getByTestId('account-email')).toBeVisible();
  }
  let refused = 0;
  let down = true;
  await context.route('**/api/auth/refresh', async (route) => {
    if (down) {
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
  await expect.poll(() => refused, { timeout: 5_000 }).toBeGreaterThan(0);
  await page.waitForTimeout(8_000);
  const during = refused;
  down = false;
  for (const tab of [page, ...others]) {
    await expect(tab.getByRole('status').filter({ hasText: 'Reconnecting…' })).toHaveCount(0, { timeout: 25_000 });
    await expect(tab.getByTestId('account-email')).toHaveText(email);
  }
  // One request a round (the first, then retries after at most 1, 2 and 4 s, at least half
  // of that each: at most five in 8 s, two more allowed for a tab that retries before
  // another tab's "unreachable" message reaches it), where three tabs retrying each on its
  // own would send about twelve.
  expect(during).toBeLessThanOrEqual(7);
});

test('a refresh whose answer is lost is retried within the server’s grace, and the person stays signed in', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(/ERR_|Failed to load resource.*\/api\/auth\/refresh/);
  const email = uniqueEmail();
  await register(page, email);
  let lost = 0;
  await page.route('**/api/auth/refresh', async (route) => {
    if (lost > 0) {
      await route.continue();
      return;
    }
    lost += 1;
    // The server carries the refresh out (the cookie rotates there), but its answer never
    // reaches the browser, which gives up waiting and retries with the cookie it has.
    await refreshOutOfSight(route);
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    await route.abort().catch(() => {});
  });
  await expect.poll(() => lost, { timeout: 5_000 }).toBe(1);
  await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toBeVisible({ timeout: 12_000 });
  await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toHaveCount(0, { timeout: 10_000 });
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await page.reload();
  await expect(page.getByTestId('account-email')).toHaveText(email);
});

test('a sign-out announced by a tab still running the previous version signs this tab out too', async ({ page }) => {
  await register(page, uniqueEmail());
  // The message as tabs sent it before sign-in epochs existed.
  await page.evaluate(() => {
    const channel = new BroadcastChannel('jwt-auth');
    channel.postMessage(JSON.stringify({ type: 'signed_out' }));
    channel.close();
  });
  await expect(header(page).getByRole('link', { name: 'Log in' })).toBeVisible();
});

test('a sign-out that fails while a call waits to refresh does not sign the person out', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(/status of (503|401)/);
  const email = uniqueEmail();
  await register(page, email);
  // The sign-out (holding the refresh lock) fails after 3 s.
  await page.route('**/api/auth/logout', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'internal', message: 'Try again later.' } }),
    });
  });
  // Meanwhile a page's call finds its token expired (whichever token it first sends).
  let stale: string | undefined;
  await page.route('**/api/sessions', async (route) => {
    const authorization = route.request().headers()['authorization'];
    stale ??= authorization;
    if (authorization === stale) {
      await route.fulfill({
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="api", error="invalid_token"' },
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'token_expired', message: 'The access token has expired.' } }),
      });
    } else {
      await route.continue();
    }
  });
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('link', { name: 'Manage your sessions' }).click();
  // The refresh it waits for runs once the failed sign-out lets go of the lock; the call is
  // retried with the new token. The person is still signed in, on the page they asked for.
  await expect(page.locator('li.session .badge')).toHaveText('This device', { timeout: 15_000 });
  await expect(page).toHaveURL(/\/account\/sessions$/);
  await expect(header(page).getByRole('button', { name: 'Log out' })).toBeVisible();
});

for (const leaked of [false, true]) {
test(`a tab queued behind a sign-in never takes the lock from it, however long the queue${leaked ? ' (and a frozen tab’s grant left over)' : ''}`, async ({
  page,
  context,
}) => {
  test.setTimeout(60_000);
  const { ada, bob } = await bobThenAda(page);
  const third = await context.newPage();
  await third.goto('/account');
  await expect(third.getByTestId('account-email')).toHaveText(ada);
  const signIn = await context.newPage();
  await loginFilled(signIn, bob);
  // Who sends what, when: the sign-in's request takes 6 s to reach the server.
  const refreshes: number[] = [];
  let loginSent = 0;
  let loginAnswered = 0;
  await context.route('**/api/auth/refresh', async (route) => {
    refreshes.push(Date.now());
    await route.continue();
  });
  await context.route('**/api/auth/login', async (route) => {
    loginSent = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    await route.continue();
    loginAnswered = Date.now();
  });
  if (leaked) {
    // The grant of a holding robbed from a frozen tab stays held until that tab runs again.
    await page.evaluate(() => {
      void navigator.locks.request('jwt-auth-grant:0', () => new Promise(() => {}));
    });
  }
  // A live holder keeps the lock 5 s; the sign-in queues first, the other tabs' proactive
  // refreshes (2 s tokens) behind it. Their waits run out while the sign-in holds the lock.
  await page.evaluate(() => {
    void navigator.locks.request('jwt-auth-refresh', () => new Promise((resolve) => setTimeout(resolve, 5_000)));
  });
  await signIn.getByRole('button', { name: 'Log in' }).click();
  await expect(signIn.getByTestId('account-email')).toHaveText(bob, { timeout: 20_000 });
  expect(loginSent).toBeGreaterThan(0);
  expect(loginAnswered).toBeGreaterThan(loginSent);
  const during = refreshes.filter((t) => t > loginSent && t < loginAnswered);
  expect(during, 'refreshes sent while the sign-in held the lock').toEqual([]);
  await context.unrouteAll({ behavior: 'ignoreErrors' });
  await signIn.reload();
  await expect(signIn.getByTestId('account-email')).toHaveText(bob);
});
}

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

test('a call refused again after its refresh does not sign out a person who signed in meanwhile', async ({
  page,
  context,
}) => {
  const { bob } = await bobThenAda(page);
  // Ada's list of sessions: refused for an expired token, then, after the refresh, refused
  // again; that second answer is held until Bob has signed in in another tab.
  const refused = (code: string) => ({
    status: 401,
    contentType: 'application/json',
    body: JSON.stringify({ error: { code, message: 'refused' } }),
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let retried!: () => void;
  const retrySent = new Promise<void>((resolve) => (retried = resolve));
  let calls = 0;
  await page.route('**/api/sessions', async (route) => {
    calls += 1;
    if (calls === 1) return route.fulfill(refused('token_expired'));
    if (calls > 2) return route.continue();
    retried();
    await gate;
    await route.fulfill(refused('token_invalid'));
  });
  await page.getByRole('link', { name: 'Manage your sessions' }).click();
  await retrySent;
  const second = await context.newPage();
  await loginFilled(second, bob);
  await second.getByRole('button', { name: 'Log in' }).click();
  await expect(header(page).getByRole('link', { name: 'Bob Example' })).toBeVisible();

  const answered = page.waitForResponse((r) => r.url().endsWith('/api/sessions') && r.status() === 401);
  release();
  await answered;
  // What the answer about Ada's token does, it does now.
  await page.waitForTimeout(1_000);
  await expect(header(second).getByRole('link', { name: 'Bob Example' })).toBeVisible();
  await expect(header(page).getByRole('link', { name: 'Bob Example' })).toBeVisible();
  await expect(page).toHaveURL(/\/account\/sessions$/);
});

test('a sign-out retry queued behind another tab’s sign-in does not sign out the person who signed in', async ({
  page,
  context,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(/net::ERR_FAILED.*\/api\/auth\/logout/);
  const { bob } = await bobThenAda(page);
  const signIn = await context.newPage();
  await loginFilled(signIn, bob);
  // Bob's sign-in holds the lock 3 s: its answer is held.
  let loginAt = 0;
  await signIn.route('**/api/auth/login', async (route) => {
    loginAt = Date.now();
    const response = await route.fetch();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await route.fulfill({ response });
  });
  // Ada's first sign-out fails at once; its retry, a second later, queues behind Bob's
  // sign-in.
  let sent = 0;
  let failedAt = 0;
  await page.route('**/api/auth/logout', async (route) => {
    sent += 1;
    if (sent === 1) {
      failedAt = Date.now();
      await route.abort('failed');
    } else {
      await route.continue();
    }
  });
  await header(page).getByRole('button', { name: 'Log out' }).click();
  await signIn.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText('Retrying');
  await expect(signIn.getByTestId('account-email')).toHaveText(bob, { timeout: 10_000 });
  expect(loginAt - failedAt, 'Bob’s sign-in held the lock before the retry was due').toBeLessThan(900);
  await expect(header(page).getByRole('link', { name: 'Bob Example' })).toBeVisible();
  // The retry was for Ada's session, which is over: it is not sent with Bob's cookie.
  await page.waitForTimeout(1_000);
  expect(sent).toBe(1);
  await signIn.reload();
  await expect(signIn.getByTestId('account-email')).toHaveText(bob);
});

test('forged "server unreachable" messages hold a tab back 30 s at most, and not once the network returns', async ({
  page,
}) => {
  test.setTimeout(90_000);
  const email = uniqueEmail();
  await register(page, email);
  // After a reload the tab restored from the cookie alone: its sign-in epoch is 0.
  await page.reload();
  await expect(page.getByTestId('account-email')).toHaveText(email);
  const forge = () =>
    page.evaluate(() => {
      const channel = new BroadcastChannel('jwt-auth');
      channel.postMessage(JSON.stringify({ type: 'unreachable', epoch: 0, retry_in_ms: 300_000 }));
      channel.close();
    });
  const reconnecting = page.getByRole('status').filter({ hasText: 'Reconnecting…' });
  await forge();
  // The next proactive refresh (2 s tokens) waits for the other "tab".
  await expect(reconnecting).toBeVisible({ timeout: 5_000 });
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  await expect(reconnecting).toHaveCount(0, { timeout: 5_000 });
  // Without the network event, and with the message posted again every 8 s: the tab tries
  // by itself 30 s after the first (and up to a second more).
  const first = Date.now();
  await forge();
  await expect(reconnecting).toBeVisible({ timeout: 5_000 });
  const again = setInterval(() => void forge().catch(() => {}), 8_000);
  try {
    await expect(reconnecting).toHaveCount(0, { timeout: 40_000 });
  } finally {
    clearInterval(again);
  }
  expect(Date.now() - first).toBeLessThan(34_000);
  await expect(page.getByTestId('account-email')).toHaveText(email);
});

test('a tab queued behind two holdings of another tab does not take the lock from the second', async ({
  page,
  context,
  allowConsoleErrors,
}) => {
  test.setTimeout(60_000);
  allowConsoleErrors(/status of 503/);
  const { ada, bob } = await bobThenAda(page);
  const signIn = await context.newPage();
  await loginFilled(signIn, bob);
  // This tab's sign-out holds the lock 6 s and fails; its own refresh, queued behind it,
  // then holds the lock while its request takes 5 s.
  await page.route('**/api/auth/logout', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    await route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'internal', message: 'Try again later.' } }),
    });
  });
  let refreshAnswered = 0;
  await page.route('**/api/auth/refresh', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await route.continue();
    refreshAnswered = Date.now();
  });
  let loginSent = 0;
  await context.route('**/api/auth/login', async (route) => {
    loginSent = Date.now();
    await route.continue();
  });
  await header(page).getByRole('button', { name: 'Log out' }).click();
  // The proactive refresh (2 s tokens) is queued by now; the other tab's sign-in after it.
  await page.waitForTimeout(2_500);
  await signIn.getByRole('button', { name: 'Log in' }).click();
  await expect(signIn.getByTestId('account-email')).toHaveText(bob, { timeout: 25_000 });
  expect(refreshAnswered, 'the refresh ran after the failed sign-out').toBeGreaterThan(0);
  expect(loginSent, 'the sign-in went out only after that refresh was answered').toBeGreaterThanOrEqual(
    refreshAnswered,
  );
  await context.unrouteAll({ behavior: 'ignoreErrors' });
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await signIn.reload();
  await expect(signIn.getByTestId('account-email')).toHaveText(bob);
});

test('a tab opened during a slow sign-in ends with the new person', async ({ page, context }) => {
  const { ada, bob } = await bobThenAda(page);
  await loginFilled(page, bob);
  await page.route('**/api/auth/login', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await route.continue();
  });
  // Right after a refresh (2 s tokens), so Ada's token is fresh enough to be shared.
  await page.waitForResponse('**/api/auth/refresh');
  await page.getByRole('button', { name: 'Log in' }).click();
  // While Bob's sign-in is on its way, a new tab asks the others for their session.
  await page.waitForTimeout(300);
  const opened = await context.newPage();
  // The new tab never gets an answer of its own: what it shows comes from the other tabs.
  await opened.route('**/api/auth/refresh', () => {});
  await opened.goto('/account');
  await expect(page.getByTestId('account-email')).toHaveText(bob, { timeout: 10_000 });
  await expect(header(opened).getByRole('link', { name: 'Bob Example' })).toBeVisible({ timeout: 5_000 });
  await expect(opened.getByTestId('account-email')).toHaveText(bob);
  await opened.unrouteAll({ behavior: 'ignoreErrors' });
});

test('a refresh whose connection drops after the server rotated is retried at once, even after long backoff', async ({
  page,
  allowConsoleErrors,
}) => {
  test.setTimeout(120_000);
  allowConsoleErrors(/status of 503|ERR_CONNECTION_RESET|Failed to load resource/);
  const email = uniqueEmail();
  await register(page, email);
  let refused = 0;
  let lost = 0;
  let retriedAfterLoss = 0;
  let lostAt = 0;
  await page.route('**/api/auth/refresh', async (route) => {
    if (refused < 5) {
      // The server is in trouble for a while: the backoff grows to 15–30 s.
      refused += 1;
      await route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'unavailable', message: 'The service is not ready.' } }),
      });
      return;
    }
    if (lost === 0) {
      // Back, it rotates the cookie, and the connection drops before the answer arrives.
      lost += 1;
      await refreshOutOfSight(route);
      lostAt = Date.now();
      await route.abort('connectionreset');
      return;
    }
    if (retriedAfterLoss === 0) retriedAfterLoss = Date.now();
    await route.continue();
  });
  await expect.poll(() => lost, { timeout: 80_000 }).toBe(1);
  await expect.poll(() => retriedAfterLoss, { timeout: 15_000 }).toBeGreaterThan(0);
  // Within the server's 10 s grace: the retry converges.
  expect(retriedAfterLoss - lostAt).toBeLessThan(5_000);
  await expect(page.getByRole('status').filter({ hasText: 'Reconnecting…' })).toHaveCount(0, { timeout: 10_000 });
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await page.reload();
  await expect(page.getByTestId('account-email')).toHaveText(email);
});
