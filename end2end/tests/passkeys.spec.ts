import {
  test,
  expect,
  logOut,
  register,
  setUp,
  uniqueEmail,
  virtualAuthenticator,
  waitForHydration,
  PASSWORD,
} from './fixtures';
import type { BrowserContext, CDPSession, Page } from '@playwright/test';

/** A device with a platform authenticator (`virtualAuthenticator`), as a page of its own. */
async function device(context: BrowserContext): Promise<Device> {
  const page = await context.newPage();
  return { page, ...(await virtualAuthenticator(page)) };
}

interface Device {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

async function addPasskey(page: Page, name: string) {
  const section = page.getByRole('region', { name: 'Two-step sign-in' });
  await section.getByLabel('Passkey name').fill(name);
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(section.getByTestId('passkeys').getByText(name, { exact: true })).toBeVisible();
}

async function passkeySignIn(page: Page) {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
}

async function passwordLogIn(page: Page, email: string) {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
}

test('passkeys: added on two devices, each signs in alone, a removed one no longer does', async ({
  browser,
  page: unused,
}) => {
  void unused;
  const email = uniqueEmail();
  const laptopContext = await browser.newContext();
  const phoneContext = await browser.newContext();
  const laptopDevice = await device(laptopContext);
  const laptop = laptopDevice.page;
  const phone = (await device(phoneContext)).page;

  await register(laptop, email);
  await addPasskey(laptop, 'Laptop');
  await passwordLogIn(phone, email);
  await expect(phone.getByTestId('account-email')).toHaveText(email);
  await addPasskey(phone, 'Phone');
  const list = phone.getByTestId('passkeys').getByRole('listitem');
  await expect(list).toHaveCount(2);

  // Each device signs in with its own passkey: no email, no password.
  await logOut(laptop);
  await passkeySignIn(laptop);
  await expect(laptop).toHaveURL(/\/account$/);
  await expect(laptop.getByTestId('account-email')).toHaveText(email);
  // A reload keeps the person signed in.
  await laptop.reload();
  await expect(laptop.getByTestId('account-email')).toHaveText(email);
  // Its signature counter went up and is checked: a second sign-in works too.
  await logOut(laptop);
  await passkeySignIn(laptop);
  await expect(laptop.getByTestId('account-email')).toHaveText(email);

  // A copy of the laptop's key on another authenticator, its counter behind (a cloned
  // authenticator): refused.
  const { credentials } = await laptopDevice.cdp.send('WebAuthn.getCredentials', {
    authenticatorId: laptopDevice.authenticatorId,
  });
  expect(credentials).toHaveLength(1);
  expect(credentials[0].signCount).toBeGreaterThan(1);
  const cloneContext = await browser.newContext();
  const clone = await device(cloneContext);
  await clone.cdp.send('WebAuthn.addCredential', {
    authenticatorId: clone.authenticatorId,
    credential: { ...credentials[0], signCount: 1 },
  });
  await passkeySignIn(clone.page);
  await expect(clone.page.getByRole('alert')).toHaveText('That passkey could not be used.');
  await cloneContext.close();

  // The phone removes the laptop's passkey: the laptop cannot use it any more.
  await phone.reload();
  await list.filter({ hasText: 'Laptop' }).getByRole('button', { name: 'Remove', exact: true }).click();
  await expect(list).toHaveCount(1);
  await logOut(laptop);
  await passkeySignIn(laptop);
  await expect(laptop.getByRole('alert')).toHaveText('That passkey could not be used.');
  await expect(laptop.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();

  await laptopContext.close();
  await phoneContext.close();
});

test('a passkey is both factors: no code asked of a person with two-step sign-in', async ({ browser }) => {
  const context = await browser.newContext();
  const { page } = await device(context);
  const email = uniqueEmail();
  await register(page, email);
  await setUp(page);
  await addPasskey(page, 'Security key');
  await logOut(page);
  // The password asks for the code…
  await passwordLogIn(page, email);
  await expect(page.getByLabel('Authentication code')).toBeVisible();
  // …the passkey does not.
  await passkeySignIn(page);
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await context.close();
});

test('a device without a passkey here says so and leaves the page usable', async ({ page }) => {
  // An authenticator holding no passkey of this site: the browser's request ends without a
  // credential, as when the person cancels the dialog.
  await virtualAuthenticator(page);
  await passkeySignIn(page);
  await expect(page.getByRole('alert')).toHaveText('The passkey request was cancelled or timed out.');
  await expect(page.getByRole('button', { name: 'Log in' })).toBeEnabled();
});

for (const [what, body] of [
  ['not JSON (a proxy’s page answered 200)', '<html>Back soon</html>'],
  ['JSON without publicKey', '{"error":"maintenance"}'],
  ['JSON null', 'null'],
]) {
  test(`passkey options that are ${what} are a server problem, not the browser’s`, async ({ page }) => {
    await page.route('**/api/auth/passkey/start', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body }),
    );
    await passkeySignIn(page);
    await expect(page.getByRole('alert')).toHaveText(
      'The server could not be reached. Check your connection and try again.',
    );
    await expect(page.getByRole('button', { name: 'Log in' })).toBeEnabled();
  });
}

test('passkey options for a new passkey that are not WebAuthn options are a server problem too', async ({
  page,
}) => {
  await register(page, uniqueEmail());
  await page.route('**/api/me/passkeys/register/start', (route) =>
    route.fulfill({ status: 200, contentType: 'application/json', body: '{}' }),
  );
  const section = page.getByRole('region', { name: 'Two-step sign-in' });
  await section.getByLabel('Passkey name').fill('Laptop');
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(section.getByRole('alert')).toHaveText(
    'The server could not be reached. Check your connection and try again.',
  );
});
