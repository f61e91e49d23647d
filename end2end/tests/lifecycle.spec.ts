import type { Page, Request } from '@playwright/test';
import {
  test,
  expect,
  register,
  logIn,
  uniqueEmail,
  waitForHydration,
  waitForMail,
  PASSWORD,
} from './fixtures';

test('register, then the code from the email verifies the address', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  const verified = page.getByTestId('account-verified');
  await expect(verified).toContainText('not yet');
  await verified.getByRole('link', { name: 'Verify your email' }).click();
  await expect(page).toHaveURL(/\/verify-email$/);
  await expect(page.getByText(email)).toBeVisible();

  const mail = await waitForMail(email, /^Your verification code$/);
  const code = mail.text.match(/Your verification code is (\d{6})/)?.[1] ?? '';
  expect(code, mail.text).toMatch(/^\d{6}$/);

  // A wrong code is refused in words, with the tries left.
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
  await page.getByLabel('Code').fill(wrong);
  await page.getByRole('button', { name: 'Verify email' }).click();
  await expect(page.getByRole('alert')).toHaveText('The code is not correct. 4 attempts left.');

  await page.getByLabel('Code').fill(code);
  await page.getByLabel('Code').press('Enter');
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('account-verified')).toHaveText('yes');
  // Still verified after a reload (it is the server's record, not the page's).
  await page.reload();
  await expect(page.getByTestId('account-verified')).toHaveText('yes');
});

test('a new code can be asked for, once a minute', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  await page.goto('/verify-email');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Send a new code' }).click();
  // Registration sent one a moment ago: the server asks to wait.
  await expect(page.getByRole('alert')).toHaveText('Too many attempts. Try again later.');
});

test('forgot password: the emailed link sets a new one and signs out every device', async ({
  browser,
}) => {
  const email = uniqueEmail();
  // A device that stays signed in with the old password.
  const laptop = await browser.newPage();
  await register(laptop, email);

  const phone = await browser.newPage();
  await phone.goto('/login');
  await waitForHydration(phone);
  await phone.getByRole('link', { name: 'Forgot your password?' }).click();
  await expect(phone).toHaveURL(/\/forgot-password$/);
  await phone.getByLabel('Email').fill(email);
  await phone.getByRole('button', { name: 'Send reset link' }).click();
  await expect(phone.getByRole('status')).toContainText(`If an account exists for ${email}`);

  const mail = await waitForMail(email, /^Reset your password$/);
  const link = mail.text.match(/https?:\/\/\S+\/reset-password#token=[\w-]+/)?.[0];
  expect(link, mail.text).toBeTruthy();
  await phone.goto(link!);
  await waitForHydration(phone);
  // The token leaves the address bar once read.
  await expect.poll(() => phone.url()).not.toContain('#token=');
  const newPassword = 'a brand new passphrase';
  await phone.getByLabel('New password').fill(newPassword);
  await phone.getByRole('button', { name: 'Set new password' }).click();
  await expect(phone.getByRole('status')).toHaveText(
    'Your password has been changed, and every device signed in to that account was signed out.',
  );

  // The laptop's session is over at its next visit.
  await laptop.reload();
  await expect(laptop).toHaveURL(/\/login\?next=\/account$/);

  // The same link does not work twice (a fresh load: from /reset-password itself, going to
  // the link would only change the fragment).
  await phone.goto('/');
  await phone.goto(link!);
  await waitForHydration(phone);
  await phone.getByLabel('New password').fill('yet another passphrase');
  await phone.getByRole('button', { name: 'Set new password' }).click();
  await expect(phone.getByRole('alert')).toContainText('not valid or was already used');
  await expect(phone.getByRole('link', { name: 'Get a new link' })).toBeVisible();

  // The new password works, the old one does not.
  await phone.goto('/login');
  await waitForHydration(phone);
  await phone.getByLabel('Email').fill(email);
  await phone.getByLabel('Password').fill(PASSWORD);
  await phone.getByRole('button', { name: 'Log in' }).click();
  await expect(phone.getByRole('alert')).toHaveText('The email or password is not correct.');
  await logIn(phone, email, newPassword);
});

test('changing the password keeps this session and ends the others', async ({ browser }) => {
  const email = uniqueEmail();
  const here = await browser.newPage();
  await register(here, email);
  const elsewhere = await browser.newPage();
  await logIn(elsewhere, email);

  await here.getByLabel('Current password', { exact: true }).fill(PASSWORD);
  await here.getByLabel('New password', { exact: true }).fill('a changed passphrase');
  await here.getByRole('button', { name: 'Change password' }).click();
  await expect(here.getByRole('status').filter({ hasText: 'password was changed' })).toBeVisible();

  // This device goes on (its token refreshes transparently)...
  await here.reload();
  await expect(here.getByTestId('account-email')).toHaveText(email);
  // ...the other one is signed out.
  await elsewhere.reload();
  await expect(elsewhere).toHaveURL(/\/login\?next=\/account$/);
});

/**
 * In `page`: a reset link asked for `email`, opened from the mail, and a new password set;
 * returns the browser's first request about its own session once the reset was answered
 * (the runtime's refresh, or a sign-out), with its answer's status.
 */
/** The reset link mailed to `email`, asked for from this page. */
async function resetLink(page: Page, email: string): Promise<string> {
  await page.goto('/forgot-password');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send reset link' }).click();
  await expect(page.getByRole('status')).toContainText(`If an account exists for ${email}`);
  const mail = await waitForMail(email, /^Reset your password$/);
  const link = mail.text.match(/https?:\/\/\S+\/reset-password#token=[\w-]+/)?.[0];
  expect(link, mail.text).toBeTruthy();
  return link!;
}

/**
 * Sets a new password from the reset link `link`, opened here, and returns the first refresh
 * or sign-out this browser sends once the reset was answered (its URL and status). `before`
 * runs on the loaded page just before the form is sent.
 */
async function resetPasswordAt(page: Page, link: string, before = async () => {}) {
  await page.goto(link);
  await waitForHydration(page);
  await page.getByLabel('New password').fill('a brand new passphrase');
  await before();
  // Set before the browser gets the answer: what it asks after that, it asks after the reset.
  let answered = false;
  await page.route('**/api/auth/password/reset', async (route) => {
    const response = await route.fetch();
    answered = response.status() === 204;
    await route.fulfill({ response });
  });
  const after: Request[] = [];
  page.on('request', (request) => {
    if (answered && /\/api\/auth\/(refresh|logout)$/.test(request.url())) after.push(request);
  });
  await page.getByRole('button', { name: 'Set new password' }).click();
  await expect(page.getByRole('status')).toHaveText(
    'Your password has been changed, and every device signed in to that account was signed out.',
  );
  await expect.poll(() => after.length).toBeGreaterThan(0);
  const response = await after[0].response();
  return { url: after[0].url(), status: response?.status() };
}

async function resetPasswordHere(page: Page, email: string) {
  return resetPasswordAt(page, await resetLink(page, email));
}

test('resetting another account’s password keeps this browser’s own session', async ({ browser }) => {
  const mine = uniqueEmail();
  const theirs = uniqueEmail();
  await register(await browser.newPage(), theirs, 'Bob Example');
  const page = await browser.newPage();
  await register(page, mine);
  // Signed in as one person, this browser resets the password of another (a link from
  // their mail, opened here).
  const after = await resetPasswordHere(page, theirs);
  // It asks about its own session (rather than signing out), which goes on.
  expect(after.url).toMatch(/\/api\/auth\/refresh$/);
  expect(after.status).toBe(200);
  await page.goto('/account');
  await expect(page.getByTestId('account-email')).toHaveText(mine);
});

test('resetting one’s own password from a signed-in browser signs it out there too', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  const after = await resetPasswordHere(page, email);
  // The session it asks about is over.
  await signedOutByTheReset(page, after);
  await page.goto('/account');
  await expect(page).toHaveURL(/\/login\?next=\/account$/);
});

/** The browser's first question after the reset was a refresh, refused: it shows no one. */
async function signedOutByTheReset(page: Page, after: { url: string; status?: number }) {
  expect(after.url).toMatch(/\/api\/auth\/refresh$/);
  expect(after.status).toBe(401);
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
}

/** Calls `deliver` once the page has the reset's answer (the form is sent after this). */
function deliverOnceResetAnswered(page: Page, deliver: () => Promise<void>) {
  void page.waitForResponse((r) => r.url().endsWith('/api/auth/password/reset')).then(deliver);
}

/**
 * Holds this page's next refresh answer: the server answers it now, the page gets it only
 * when `deliver()` is called. Resolves once the server has answered (200 asserted).
 */
async function holdNextRefresh(page: Page): Promise<{ deliver: () => Promise<void> }> {
  return new Promise((answered) => {
    void page.route(
      '**/api/auth/refresh',
      async (route) => {
        const response = await route.fetch();
        expect(response.status()).toBe(200);
        answered({ deliver: () => route.fulfill({ response }) });
      },
      { times: 1 },
    );
  });
}

// A refresh the server answered before the reset ended the session, whose answer reaches
// the page after the reset's: the page must not take it as the word on its session. The
// page's clock is paused, so no timed refresh of the 2 s token tells the page instead.
test('a refresh answered before one’s own reset but landing after it does not keep the browser signed in', async ({ page }) => {
  const email = uniqueEmail();
  await page.clock.install();
  await register(page, email);
  const link = await resetLink(page, email);
  const after = await resetPasswordAt(page, link, async () => {
    await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
    // The 2 s token's timed refresh, within 2 s.
    const { deliver } = await holdNextRefresh(page);
    await page.clock.pauseAt(Date.now() + 100);
    // Sent once the reset was answered (the form's click comes after this returns).
    deliverOnceResetAnswered(page, deliver);
  });
  await signedOutByTheReset(page, after);
  await page.clock.resume();
});

// The same while the page is still restoring the session: the restore's refresh, answered
// before the reset, lands after it.
test('a reset sent while the page restores the session still ends it there', async ({ page }) => {
  const email = uniqueEmail();
  await page.clock.install();
  await register(page, email);
  const link = await resetLink(page, email);
  const held = holdNextRefresh(page);
  const after = await resetPasswordAt(page, link, async () => {
    const { deliver } = await held;
    await page.clock.pauseAt(Date.now() + 100);
    await expect(page.getByRole('banner').getByRole('button', { name: 'Log out' })).toBeHidden();
    deliverOnceResetAnswered(page, deliver);
  });
  await signedOutByTheReset(page, after);
  await page.clock.resume();
});

test('a reset link without its token says so at once', async ({ page }) => {
  await page.goto('/reset-password');
  await waitForHydration(page);
  await expect(page.getByRole('alert')).toContainText('This link is incomplete');
  await expect(page.getByRole('link', { name: 'Get a new link' })).toBeVisible();
});
