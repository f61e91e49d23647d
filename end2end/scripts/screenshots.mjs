// Screenshots of the login and account pages for the README, at desktop and phone widths,
// and of the admin page when ADMIN_EMAIL and ADMIN_PASSWORD name an admin.
// Usage, against a running server (e.g. `cargo xtask serve`):
//   node scripts/screenshots.mjs http://127.0.0.1:3000 ../docs/screenshots
import { chromium } from '@playwright/test';

const [base = 'http://127.0.0.1:3000', out = '../docs/screenshots'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking'],
});
const email = `ada-${Date.now()}@example.com`;
for (const [label, viewport] of [['desktop', { width: 1100, height: 700 }], ['phone', { width: 390, height: 760 }]]) {
  const page = await (await browser.newContext({ viewport })).newPage();
  await page.goto(`${base}/login`);
  await page.locator('.app[data-hydrated="true"]').waitFor({ state: 'attached' });
  await page.getByLabel('Email').fill('ada@example');
  await page.getByLabel('Password').fill('x');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').waitFor();
  await page.screenshot({ path: `${out}/login-${label}.png` });

  await page.goto(`${base}/register`);
  await page.locator('.app[data-hydrated="true"]').waitFor({ state: 'attached' });
  await page.getByLabel('Name').fill('Ada Lovelace');
  await page.getByLabel('Email').fill(label === 'desktop' ? email : `phone-${email}`);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByTestId('account-email').waitFor();
  await page.getByTestId('account-verified').waitFor();
  await page.screenshot({ path: `${out}/account-${label}.png`, fullPage: true });
}
if (process.env.ADMIN_EMAIL && process.env.ADMIN_PASSWORD) {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
  await page.goto(`${base}/login?next=/admin`);
  await page.locator('.app[data-hydrated="true"]').waitFor({ state: 'attached' });
  await page.getByLabel('Email').fill(process.env.ADMIN_EMAIL);
  await page.getByLabel('Password').fill(process.env.ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('table', { name: 'Audit log' }).waitFor();
  await page.screenshot({ path: `${out}/admin-desktop.png`, fullPage: true });
}
await browser.close();
