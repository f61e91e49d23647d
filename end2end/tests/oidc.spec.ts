import {
  test,
  expect,
  logOut,
  register,
  setUp,
  totp,
  uniqueEmail,
  verifyEmail,
  virtualAuthenticator,
  waitForHydration,
} from './fixtures';
import type { Page } from '@playwright/test';
import { oidcPort } from '../server-env';

// The provider's development pages ask for a web font (no Internet here) and a favicon it
// does not have: its console errors, not ours.
const providerNoise = new RegExp(
  `fonts\\.googleapis\\.com|127\\.0\\.0\\.1:${oidcPort}/favicon\\.ico`,
);

/** At the test provider's own pages: sign in as `login` and consent. */
async function atProvider(page: Page, login: string) {
  await expect(page.locator('input[name="login"]')).toBeVisible();
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  await expect(page.getByRole('heading', { name: 'Authorize' })).toBeVisible();
  await page.getByRole('button', { name: 'Continue' }).click();
}

test('"Continue with" a provider signs a new person in, and a reload keeps them signed in', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(providerNoise);
  const email = uniqueEmail();
  await page.goto('/login?next=/account');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Continue with Test ID' }).click();
  await atProvider(page, email);
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await expect(page.getByTestId('account-verified')).toHaveText('yes');
  await page.reload();
  await expect(page.getByTestId('account-email')).toHaveText(email);
  // The sessions page says how this session began.
  await page.goto('/account/sessions');
  await expect(page.locator('li.session', { hasText: 'This device' })).toContainText('signed in with Test ID');
});

test('a sign-in at a provider shows the new person in that tab and every other, not the one signed in before', async ({
  page,
  context,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(providerNoise);
  await page.clock.install();
  await register(page, uniqueEmail(), 'Ada Lovelace');
  // A second tab, handed Ada's session by the first, where someone signs in at the provider.
  const other = await context.newPage();
  await other.goto('/login');
  await waitForHydration(other);
  await expect(other.getByRole('banner').getByRole('link', { name: 'Ada Lovelace' })).toBeVisible();
  // Every text the second tab's header shows, page by page: the page the provider comes
  // back to must never show Ada, even for the moment before a timed refresh would correct
  // it (the test's tokens last 2 s; real ones minutes).
  await other.addInitScript(() => {
    const shown: string[] = [];
    (window as unknown as { headerTexts: string[] }).headerTexts = shown;
    new MutationObserver(() => {
      const header = document.querySelector('header');
      if (header) shown.push(header.textContent ?? '');
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  // From here no timed refresh runs in either tab (the clock is the context's): the first tab
  // neither puts Ada's cookie back during the sign-in nor learns of the new person by one.
  await page.clock.pauseAt(Date.now() + 100);
  await other.getByRole('button', { name: 'Continue with Test ID' }).click();
  const email = uniqueEmail();
  await atProvider(other, email);
  await expect(other).toHaveURL(/\/account$/);
  await expect(other.getByTestId('account-email')).toHaveText(email);
  const shown = await other.evaluate(() => (window as unknown as { headerTexts: string[] }).headerTexts);
  expect(shown.length).toBeGreaterThan(0);
  expect(shown.filter((text) => text.includes('Ada Lovelace'))).toEqual([]);
  // The first tab learns of the new sign-in from the second, as after a password sign-in.
  await expect(page.getByTestId('account-email')).toHaveText(email);
  await page.clock.resume();
});

test('an address proven at a provider in another tab shows at once what it took away', async ({
  page,
  context,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(providerNoise);
  // Whoever registered the address never proved it, and set up two-step sign-in.
  const email = uniqueEmail();
  await page.clock.install();
  await register(page, email);
  await setUp(page);
  await expect(page.getByTestId('password-method')).toHaveText('Password: set');
  // And a passkey, on a virtual authenticator of this browser.
  await virtualAuthenticator(page);
  const section = page.getByRole('region', { name: 'Two-step sign-in' });
  await section.getByLabel('Passkey name').fill('Squatter key');
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(section.getByTestId('passkeys').getByText('Squatter key', { exact: true })).toBeVisible();
  // No timed refresh from here (the clock is the context's): the first tab's old cookie
  // cannot meet the server after the proof, nor tell the tab of the new session.
  await page.clock.pauseAt(Date.now() + 100);
  // The owner proves the address at the provider, in another tab: the password and the
  // second factor go, every session ends, and this tab takes the new one.
  const other = await context.newPage();
  await other.goto('/login');
  await waitForHydration(other);
  await other.getByRole('button', { name: 'Continue with Test ID' }).click();
  await atProvider(other, `owner-${Date.now()}:${email}`);
  await expect(other.getByTestId('account-email')).toHaveText(email);
  await expect(page.getByTestId('account-verified')).toHaveText('yes');
  await expect(page.getByTestId('password-method')).toContainText('Password: not set');
  await expect(section.getByRole('button', { name: 'Set up authenticator app' })).toBeVisible();
  await expect(section.getByText('Squatter key', { exact: true })).toHaveCount(0);
  await page.clock.resume();
});

test('the provider buttons work before the page is live, on the register page too', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/register');
  await page.getByRole('button', { name: 'Continue with Test ID' }).click();
  await expect(page.locator('input[name="login"]')).toBeVisible();
  await context.close();
});

test('cancelling at the provider comes back to the login page saying so', async ({ page, allowConsoleErrors }) => {
  allowConsoleErrors(providerNoise);
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Continue with Test ID' }).click();
  await expect(page.locator('input[name="login"]')).toBeVisible();
  await page.getByRole('link', { name: /Cancel/ }).click();
  await expect(page).toHaveURL(/\/login\?error=oidc_cancelled$/);
  await expect(page.getByRole('alert')).toHaveText('You cancelled the sign-in at the provider.');
  await expect(page.getByRole('banner').getByRole('link', { name: 'Log in' })).toBeVisible();
});

test('a person connects a provider from the account page, then disconnects it', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(providerNoise);
  const email = uniqueEmail();
  await register(page, email);
  // Linking wants a proven address.
  await verifyEmail(page, email);
  await expect(page.getByTestId('password-method')).toHaveText('Password: set');
  await page.getByRole('button', { name: 'Connect Test ID' }).click();
  // The provider's account need not share the address.
  await atProvider(page, `linked-${Date.now()}:${uniqueEmail()}`);
  await expect(page).toHaveURL(/\/account$/);
  const disconnect = page.getByRole('button', { name: 'Disconnect Test ID' });
  await expect(disconnect).toBeVisible();
  await disconnect.click();
  await expect(page.getByRole('button', { name: 'Connect Test ID' })).toBeVisible();
  await expect(disconnect).toHaveCount(0);
});

test('the last way to sign in cannot be disconnected, and the page says why', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(providerNoise);
  allowConsoleErrors(/status of 409/);
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Continue with Test ID' }).click();
  await atProvider(page, uniqueEmail());
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByTestId('password-method')).toContainText('Password: not set');
  await page.getByRole('button', { name: 'Disconnect Test ID' }).click();
  await expect(page.getByRole('alert')).toContainText('only way to sign in');
  await expect(page.getByRole('button', { name: 'Disconnect Test ID' })).toBeVisible();
});

test('after the provider, a person with two-step sign-in is asked for the code on the login page', async ({
  page,
  allowConsoleErrors,
}) => {
  allowConsoleErrors(providerNoise);
  const email = uniqueEmail();
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Continue with Test ID' }).click();
  await atProvider(page, email);
  await expect(page.getByTestId('account-email')).toHaveText(email);
  const { secret } = await setUp(page);
  await logOut(page);
  // Signed out at the provider too, so it asks again.
  await page.context().clearCookies();

  await page.goto('/login?next=/account/sessions');
  await waitForHydration(page);
  await page.getByRole('button', { name: 'Continue with Test ID' }).click();
  await atProvider(page, email);
  await expect(page.getByLabel('Authentication code')).toBeVisible();
  // The token is read and gone from the address.
  expect(new URL(page.url()).hash).toBe('');
  await page.getByLabel('Authentication code').fill(totp(secret, Date.now() / 1000 + 30));
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page).toHaveURL(/\/account\/sessions$/);
});
