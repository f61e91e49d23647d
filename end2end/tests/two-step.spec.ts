import { test, expect, logOut, register, setUp, uniqueEmail, waitForHydration, totp, PASSWORD } from './fixtures';
import type { Page } from '@playwright/test';

/** The password step: the page asks for the code, without a reload. */
async function password(page: Page, email: string) {
  await page.goto('/login');
  await waitForHydration(page);
  await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByLabel('Authentication code')).toBeVisible();
  await expect(page.getByLabel('Password')).toHaveCount(0);
}

async function stillSameDocument(page: Page) {
  expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
}

test('two-step sign-in with an authenticator app, from setup to turning it off', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  const { secret, codes } = await setUp(page);
  await logOut(page);

  await password(page, email);
  // A wrong code is said so beside the form, and the step stays.
  const right = totp(secret, Date.now() / 1000 + 30); // the next step's: the setup used this one's
  await page.getByLabel('Authentication code').fill(right === '000000' ? '111111' : '000000');
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('alert')).toHaveText('That code is not correct.');
  await page.getByLabel('Authentication code').fill(right);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await stillSameDocument(page);
  // A reload keeps the person signed in.
  await page.reload();
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await logOut(page);

  // A recovery code instead, once.
  await password(page, email);
  await page.getByRole('link', { name: 'Use a recovery code' }).click();
  await page.getByLabel('Recovery code').fill(codes[0]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await stillSameDocument(page);
  const section = page.getByRole('region', { name: 'Two-step sign-in' });
  await expect(section.getByTestId('two-step-status')).toHaveText(
    'Two-step sign-in is on. 9 recovery codes left.',
  );

  // Off, with another recovery code; then a password is enough.
  await section.getByLabel('Code from your app, or a recovery code').fill(codes[1]);
  await section.getByRole('button', { name: 'Turn off two-step sign-in' }).click();
  await expect(section.getByRole('button', { name: 'Set up authenticator app' })).toBeVisible();
  await logOut(page);
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('account-email')).toHaveText(email);
});

test('a used recovery code is refused and the step stays', async ({ page }) => {
  const email = uniqueEmail();
  await register(page, email);
  const { codes } = await setUp(page);
  await logOut(page);
  await password(page, email);
  await page.getByRole('link', { name: 'Use a recovery code' }).click();
  await page.getByLabel('Recovery code').fill(codes[2]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await logOut(page);
  await password(page, email);
  await page.getByRole('link', { name: 'Use a recovery code' }).click();
  await page.getByLabel('Recovery code').fill(codes[2]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('alert')).toHaveText('That code is not correct.');
  await expect(page.getByLabel('Recovery code')).toBeVisible();
  await stillSameDocument(page);
});
