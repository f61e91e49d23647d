import { test, expect, register, uniqueEmail, waitForHydration, PASSWORD } from './fixtures';

test('revoking a session from the sessions page signs that device out', async ({ page, browser }) => {
  const email = uniqueEmail();
  await register(page, email);

  // The same person on another device (another browser context, its own cookie jar).
  const other = await browser.newContext();
  const phone = await other.newPage();
  await phone.goto('/login');
  await waitForHydration(phone);
  await phone.getByLabel('Email').fill(email);
  await phone.getByLabel('Password').fill(PASSWORD);
  await phone.getByRole('button', { name: 'Log in' }).click();
  await expect(phone.getByTestId('account-email')).toHaveText(email);

  await page.getByRole('link', { name: 'Manage your sessions' }).click();
  await expect(page).toHaveURL(/\/account\/sessions$/);
  const rows = page.locator('li.session');
  await expect(rows).toHaveCount(2);
  await expect(page.getByText('This device')).toHaveCount(1);
  await expect(rows.filter({ hasText: 'signed in with a password' })).toHaveCount(2);
  await page.getByRole('button', { name: /^Sign out Chrome/ }).click();
  await expect(rows).toHaveCount(1);
  await expect(page.getByRole('button', { name: 'Sign out all other sessions' })).toBeDisabled();

  // The other device is signed out at its next refresh.
  await phone.reload();
  await expect(phone).toHaveURL(/\/login\?next=\/account$/);
  await other.close();
});
