import type { Page } from '@playwright/test';
import { test, expect, register, logIn, totp, uniqueEmail, verifyEmail, waitForHydration, PASSWORD } from './fixtures';

test('verifying the email in one tab shows it verified in every tab', async ({ page, context }) => {
  const email = uniqueEmail();
  await register(page, email);
  const other = await context.newPage();
  await other.goto('/account');
  await expect(other.getByTestId('account-verified')).toContainText('not yet');

  await verifyEmail(page, email);
  // The other tab, untouched, shows it too.
  await expect(other.getByTestId('account-verified')).toHaveText('yes');
});

test('a change of the person’s details in another tab keeps what this page shows once, and what is typed', async ({
  page,
  context,
}) => {
  const email = uniqueEmail();
  await register(page, email);
  await expect(page.getByTestId('account-verified')).toContainText('not yet');
  // The recovery codes on screen (shown this once), and a half-typed password change.
  const section = page.getByRole('region', { name: 'Two-step sign-in' });
  await section.getByRole('button', { name: 'Set up authenticator app' }).click();
  const secret = (await section.getByTestId('totp-secret').textContent()) ?? '';
  await section.getByLabel('Code', { exact: true }).fill(totp(secret));
  await section.getByRole('button', { name: 'Confirm' }).click();
  const codes = section.getByTestId('recovery-codes').getByRole('listitem');
  await expect(codes).toHaveCount(10);
  await page.getByLabel('Current password').fill(PASSWORD);

  // The email verified in another tab: this tab's person changes (their details).
  await verifyEmail(await context.newPage(), email);
  await expect(page.getByTestId('account-verified')).toHaveText('yes');
  await expect(codes).toHaveCount(10);
  await expect(page.getByLabel('Current password')).toHaveValue(PASSWORD);
});

test('a call the server never answers is given up, and the form can be sent again', async ({ page, allowConsoleErrors }) => {
  allowConsoleErrors(/password\/change/);
  await page.clock.install();
  await register(page, uniqueEmail());
  await page.route('**/api/auth/password/change', () => {});
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByLabel('New password').fill('a brand new passphrase');
  const button = page.getByRole('button', { name: 'Change password' });
  await button.click();
  await expect(button).toBeDisabled();
  // Longer than the server's own limit for a request (30 s), whose answer would come first.
  await page.clock.runFor(45_000);
  await expect(page.getByRole('alert')).toContainText('could not be reached');
  await expect(button).toBeEnabled();
});

test('a failed "Sign out" of one session keeps the list and can be tried again', async ({
  page,
  browser,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(/ERR_FAILED.*\/api\/sessions\//);
  const email = uniqueEmail();
  await register(page, email);
  const phone = await browser.newPage({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1' });
  await logIn(phone, email);
  await page.goto('/account/sessions');
  const signOut = page.getByRole('button', { name: /^Sign out Safari on iOS/ });
  await expect(signOut).toBeVisible();

  await page.route('**/api/sessions/*', (route) =>
    route.request().method() === 'DELETE' ? route.abort('failed') : route.continue(),
  );
  await signOut.click();
  await expect(page.getByRole('alert')).toContainText('try again');
  // The list is still there, and the button works once the server is reached.
  await expect(signOut).toBeEnabled();
  await page.unroute('**/api/sessions/*');
  await signOut.click();
  await expect(signOut).toHaveCount(0);
  await phone.close();
});

test('after a login that comes back to the login page, "Log in" is usable again', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
  await page.goto('/login?next=/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('banner').getByRole('button', { name: 'Log out' })).toBeVisible();
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole('button', { name: 'Log in' })).toBeEnabled();
});

test('a failed submit moves focus to the first invalid field, or to the error', async ({ page }) => {
  await page.goto('/register');
  await waitForHydration(page);
  await page.getByLabel('Name').fill('Ada Lovelace');
  await page.getByLabel('Email').fill('not an email');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByLabel('Email')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Email')).toBeFocused();

  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(uniqueEmail());
  await page.getByLabel('Password').fill('a wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('The email or password is not correct.');
  await expect(page.getByRole('alert')).toBeFocused();
});

test('a session offered by a script on the channel for another person, or forged, is ignored', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email, 'Ada Lovelace');
  const name = page.getByRole('banner').getByRole('link', { name: 'Ada Lovelace' });
  await expect(name).toBeVisible();
  await page.evaluate(() => {
    const channel = new BroadcastChannel('jwt-auth');
    const user = { id: 'someone-else', email: 'mallory@example.com', name: 'Mallory', role: 'admin',
      email_verified: true, created_at: '2026-01-01T00:00:00Z' };
    // Not a JWT; then a far-future epoch; then a sign-out of an ancient epoch.
    channel.postMessage(JSON.stringify({ type: 'session', epoch: Date.now(), session: {
      user, access_token: 'not-a-token', token_type: 'Bearer', expires_in: 900 } }));
    channel.postMessage(JSON.stringify({ type: 'signed_out', epoch: 1 }));
    channel.postMessage(JSON.stringify({ type: 'person', epoch: Date.now(), user }));
  });
  await page.waitForTimeout(500);
  await expect(name).toBeVisible();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Mallory' })).toHaveCount(0);
  await expect(page.getByTestId('account-email')).toHaveText(email);
});

/** Signs `email` in through the login page of a new tab of the same browser. */
async function signInElsewhere(page: Page, email: string) {
  const other = await page.context().newPage();
  await logIn(other, email);
  return other;
}

test('the sessions page shows the new person’s sessions when another person signs in', async ({ page, browser }) => {
  const ada = uniqueEmail();
  const bob = uniqueEmail();
  await register(page, bob, 'Bob Example');
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
  await register(page, ada, 'Ada Lovelace');
  const phone = await browser.newPage({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1' });
  await logIn(phone, ada);
  await page.goto('/account/sessions');
  await expect(page.getByRole('button', { name: /^Sign out Safari on iOS/ })).toBeVisible();
  // Bob signs in in another tab: this page lists Bob's sessions, not Ada's phone.
  await signInElsewhere(page, bob);
  await expect(page.getByRole('banner').getByRole('link', { name: 'Bob Example' })).toBeVisible();
  await expect(page.getByRole('button', { name: /^Sign out Safari on iOS/ })).toHaveCount(0);
  await expect(page.locator('li.session .badge')).toHaveText('This device');
  await phone.close();
});

test('the verify-email page follows the person signed in', async ({ page }) => {
  const ada = uniqueEmail();
  const bob = uniqueEmail();
  await register(page, bob, 'Bob Example');
  await page.getByRole('banner').getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
  await register(page, ada, 'Ada Lovelace');
  await page.goto('/verify-email');
  await expect(page.locator('main strong')).toHaveText(ada);
  await signInElsewhere(page, bob);
  await expect(page.locator('main strong')).toHaveText(bob);
});
