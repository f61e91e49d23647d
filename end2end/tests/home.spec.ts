import { test, expect, waitForHydration } from './fixtures';

test('the home page renders on the server, hydrates and responds', async ({ page }) => {
  const response = await page.goto('/');
  expect(response?.status()).toBe(200);

  const csp = response!.headers()['content-security-policy'];
  expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]{16,}'/);
  expect(csp).not.toContain('unsafe-inline');

  // Once hydrated, the silent restore finds no session and the header offers to sign in.
  await waitForHydration(page);
  const header = page.getByRole('banner');
  await expect(header.getByRole('link', { name: 'Log in' })).toHaveAttribute('href', '/login');
  await expect(header.getByRole('link', { name: 'Create account' })).toHaveAttribute('href', '/register');
});

test.describe('at phone width', () => {
  test.use({ viewport: { width: 390, height: 800 } });

  test('the menu button opens and closes the links once hydrated', async ({ page }) => {
    await page.goto('/');
    await waitForHydration(page);
    const header = page.getByRole('banner');
    const menu = header.getByRole('button', { name: 'Menu' });
    const login = header.getByRole('link', { name: 'Log in' });
    await expect(menu).toHaveAttribute('aria-expanded', 'false');
    await expect(login).toBeHidden();
    await menu.click();
    await expect(menu).toHaveAttribute('aria-expanded', 'true');
    await expect(login).toBeVisible();
    await menu.click();
    await expect(login).toBeHidden();
  });
});

test('the stylesheet from style/ is applied', async ({ page }) => {
  await page.goto('/');
  const background = await page
    .getByRole('banner')
    .evaluate((el) => getComputedStyle(el).backgroundColor);
  expect(background).not.toBe('rgba(0, 0, 0, 0)');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the server renders public content at once and a neutral header', async ({ page }) => {
    await page.goto('/');
    await expect(page.getByRole('heading', { level: 1 })).toContainText('JWT');
    await expect(page.locator('.app')).toHaveAttribute('data-hydrated', 'false');
    // The server never knows the session: neither sign-in links nor a name.
    await expect(page.getByRole('link', { name: 'Log in' })).toHaveCount(0);
    await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
  });
});
