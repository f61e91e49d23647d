import {
  test,
  expect,
  register,
  logIn,
  serverCli,
  uniqueEmail,
  waitForHydration,
  type Page,
} from './fixtures';

// One admin for the file, made by the server's command line as an operator would; the
// suite's database has no other admin, so the last-admin rule applies to this one.
const adminEmail = uniqueEmail().replace('person-', 'admin-');
const adminPassword = 'an admin passphrase';

test.beforeAll(() => {
  const out = serverCli(['admin', 'create', '--email', adminEmail, '--name', 'Grace Admin'], `${adminPassword}\n`);
  expect(out).toContain(adminEmail);
});

async function openAdmin(page: Page) {
  await logIn(page, adminEmail, adminPassword);
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole('heading', { name: 'People' })).toBeVisible();
}

async function findPerson(page: Page, email: string) {
  await page.getByLabel('Search people').fill(email);
  await page.getByRole('button', { name: 'Search' }).click();
  const row = page.locator(`tr[data-email="${email}"]`);
  await expect(row).toHaveCount(1);
  return row;
}

test('an admin disables a person, whose open tab is signed out at its next call', async ({
  page,
  browser,
}) => {
  const email = uniqueEmail();
  const person = await browser.newPage();
  await register(person, email);

  // The person's refreshes wait until their tab has made its call: otherwise a proactive
  // refresh (2 s tokens) may meet the refusal first and leave the page before the click.
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await person.route('**/api/auth/refresh', async (route) => {
    await gate;
    await route.continue();
  });

  await openAdmin(page);
  const row = await findPerson(page, email);
  await page.getByRole('button', { name: `Disable ${email}` }).click();
  await expect(row).toContainText('disabled');
  await expect(page.getByRole('button', { name: `Enable ${email}` })).toBeVisible();

  // The person's tab is still open on their account; its next API call fails, the
  // refresh is refused (account_disabled), and the tab goes to the login page.
  await person.getByRole('link', { name: 'Manage your sessions' }).click();
  release();
  await expect(person).toHaveURL(/\/login\?next=\/account\/sessions$/);
  await person.unroute('**/api/auth/refresh');
  // Logging in again is refused in words.
  await waitForHydration(person);
  await person.getByLabel('Email').fill(email);
  await person.getByLabel('Password').fill('correct horse battery');
  await person.getByRole('button', { name: 'Log in' }).click();
  await expect(person.getByRole('alert')).toHaveText('This account is disabled.');

  // The audit log shows the change, with who did it to whom.
  await page.getByRole('button', { name: 'Refresh the log' }).click();
  const entry = page
    .getByRole('table', { name: 'Audit log' })
    .getByRole('row')
    .filter({ hasText: 'access changed' })
    .filter({ hasText: email });
  await expect(entry.first()).toContainText(adminEmail);
  await expect(entry.first()).toContainText('active true to false');

  // Enabled again, the person can sign in.
  await page.getByRole('button', { name: `Enable ${email}` }).click();
  await expect(row).toContainText('active');
  await person.getByRole('button', { name: 'Log in' }).click();
  await expect(person).toHaveURL(/\/account\/sessions$/);
});

test('the last active admin cannot be demoted or disabled', async ({ page }) => {
  await openAdmin(page);
  await findPerson(page, adminEmail);
  await page.getByRole('button', { name: `Make user ${adminEmail}` }).click();
  await expect(page.getByRole('alert')).toHaveText('The last active admin cannot be demoted or disabled.');
  await page.getByRole('button', { name: `Disable ${adminEmail}` }).click();
  await expect(page.getByRole('alert')).toHaveText('The last active admin cannot be demoted or disabled.');
  // Still an admin: the page still works.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'People' })).toBeVisible();
});

test('people who are not admins see no admin page', async ({ page }) => {
  await register(page, uniqueEmail());
  await expect(page.getByRole('link', { name: 'Admin', exact: true })).toHaveCount(0);
  await page.goto('/admin');
  await waitForHydration(page);
  await expect(page.getByRole('alert')).toHaveText('Only admins can see this page.');
});

test('an admin can promote a person, who then has the admin page', async ({ page, browser }) => {
  const email = uniqueEmail();
  const person = await browser.newPage();
  await register(person, email);
  await openAdmin(page);
  const row = await findPerson(page, email);
  await page.getByRole('button', { name: `Make admin ${email}` }).click();
  await expect(row.getByRole('cell', { name: 'admin', exact: true })).toBeVisible();
  // The person's old token carries the old role: it stops working, and the refresh
  // brings the new one.
  await person.reload();
  await expect(person.getByRole('link', { name: 'Admin', exact: true })).toBeVisible();
  // Two admins now: one may be demoted (back to user).
  await page.getByRole('button', { name: `Make user ${email}` }).click();
  await expect(row.getByRole('cell', { name: 'user', exact: true })).toBeVisible();
});

test('the admin page closes when a person who is not an admin signs in in another tab', async ({ page }) => {
  const person = uniqueEmail();
  await register(page, person, 'Pat Person');
  await openAdmin(page);
  const other = await page.context().newPage();
  await logIn(other, person);
  await expect(page.getByRole('banner').getByRole('link', { name: 'Pat Person' })).toBeVisible();
  await expect(page.getByRole('alert')).toHaveText('Only admins can see this page.');
  await expect(page.getByRole('heading', { name: 'People' })).toHaveCount(0);
  await expect(page.locator('tr[data-email]')).toHaveCount(0);
});
