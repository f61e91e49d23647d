import {
  test,
  expect,
  uniqueEmail,
  waitForHydration,
  logIn,
  register,
  serverCli,
  type Page,
} from './fixtures';

// What a first visit downloads and how it is served, with the release build the test command
// makes (the WASM split, hashed file names, brotli and gzip copies): a page hydrates from the
// main WASM; what few visitors see (behind the sign-in guard, the forgot- and reset-password
// forms) comes in chunks of its own when first shown.

interface Fetched {
  name: string;
  /** Bytes on the wire (compressed when the server sent it compressed). */
  bytes: number;
}

/** Every `.wasm` file the page fetches from now on, in order. */
function watchWasm(page: Page) {
  const done: Promise<Fetched>[] = [];
  page.on('requestfinished', (request) => {
    const name = new URL(request.url()).pathname.split('/').pop() ?? '';
    if (name.endsWith('.wasm')) {
      done.push(request.sizes().then((sizes) => ({ name, bytes: sizes.responseBodySize })));
    }
  });
  return { all: () => Promise.all(done), count: () => done.length };
}

const MAIN_WASM = /^jwt-auth\.[A-Za-z0-9_-]{22}\.wasm$/;
const LAZY_WASM = /^(split|chunk)_.*\.[A-Za-z0-9_-]{22}\.wasm$/;
const ADMIN_WASM = /split_admin_content\.[A-Za-z0-9_-]{22}\.wasm$/;

// A debug or bare release build names its files plainly and sends them uncompressed: these
// tests are then skipped, except where the hashed build is required (`cargo xtask test`
// sets E2E_HASHED=1, so there a build without hashes fails them).
test.beforeEach(async ({ request }) => {
  const html = await (await request.get('/login')).text();
  const hashed = /\/pkg\/jwt-auth\.[A-Za-z0-9_-]{22}\.wasm/.test(html);
  if (process.env.E2E_HASHED === '1') {
    expect(hashed, 'the page names hashed files').toBe(true);
  }
  test.skip(!hashed, 'the server runs a build without hashed, compressed files');
});

function kilobytes(files: Fetched[]) {
  return `${(files.reduce((sum, f) => sum + f.bytes, 0) / 1000).toFixed(1)} KB`;
}

test('a first visit to /login fetches only the main WASM, compressed, and the form works', async ({ page }) => {
  const wasm = watchWasm(page);
  await page.goto('/login');
  await waitForHydration(page);
  // Interactive: the form answers in the page, without a reload.
  await page.getByLabel('Email').fill(uniqueEmail());
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('The email or password is not correct.');
  await page.waitForLoadState('networkidle');
  const fetched = await wasm.all();
  expect(fetched.map((f) => f.name)).toHaveLength(1);
  expect(fetched[0].name).toMatch(MAIN_WASM);
  // Compressed on the wire: the file itself is over 600 KB.
  expect(fetched[0].bytes).toBeLessThan(400_000);
  // A figure for the report, not a timed assertion.
  console.log(`first visit to /login: WASM ${kilobytes(fetched)} on the wire (${fetched.map((f) => f.name).join(', ')})`);
});

test('a first visit to /account fetches the main WASM, then the account chunks once signed in', async ({ page, browser }) => {
  const email = uniqueEmail();
  await register(page, email);
  // A returning person: the refresh cookie, and an empty cache.
  const fresh = await browser.newContext({ storageState: await page.context().storageState() });
  const tab = await fresh.newPage();
  const wasm = watchWasm(tab);
  await tab.goto('/account');
  await expect(tab.getByTestId('account-email')).toHaveText(email);
  await tab.waitForLoadState('networkidle');
  const fetched = await wasm.all();
  expect(fetched.filter((f) => MAIN_WASM.test(f.name))).toHaveLength(1);
  expect(fetched.filter((f) => LAZY_WASM.test(f.name)).length).toBeGreaterThan(0);
  expect(fetched.every((f) => MAIN_WASM.test(f.name) || LAZY_WASM.test(f.name))).toBe(true);
  console.log(`first visit to /account: WASM ${kilobytes(fetched)} on the wire in ${fetched.length} files`);
  await fresh.close();
});

test('a first visit to /forgot-password hydrates from the main WASM, then fetches its form', async ({ page }) => {
  const wasm = watchWasm(page);
  await page.goto('/forgot-password');
  await waitForHydration(page);
  await page.getByLabel('Email').fill(uniqueEmail());
  await page.getByRole('button', { name: 'Send reset link' }).click();
  await expect(page.getByRole('status')).toContainText('If an account exists for');
  const fetched = await wasm.all();
  expect(fetched.filter((f) => MAIN_WASM.test(f.name))).toHaveLength(1);
  expect(fetched.filter((f) => LAZY_WASM.test(f.name)).length).toBeGreaterThan(0);
  console.log(`first visit to /forgot-password: WASM ${kilobytes(fetched)} on the wire in ${fetched.length} files`);
});

test('a chunk that cannot be fetched says so, and "Try again" loads it once the network is back', async ({
  page,
  allowConsoleErrors,
}) => {
  // The browser's own line for each aborted file, and the split loader's for the failure.
  allowConsoleErrors(/net::ERR_FAILED|Failed to fetch|TypeError|WebAssembly/);
  await register(page, uniqueEmail());
  let reachable = false;
  await page.route(/\/pkg\/(split|chunk)_[^/]*\.wasm$/, (route) =>
    reachable ? route.continue() : route.abort('failed'),
  );
  await page.goto('/account/sessions');
  await expect(page.getByRole('alert')).toHaveText(
    'This part of the page could not be loaded. Check your connection and try again, or reload the page.',
  );
  // Still out of reach: it says so again, and the button keeps the focus.
  await page.getByRole('button', { name: 'Try again' }).click();
  await expect(page.getByRole('button', { name: 'Try again' })).toBeFocused();
  await expect(page.getByRole('alert')).toHaveCount(1);
  // The app still runs in this tab: the part is fetched anew, without a reload.
  reachable = true;
  await page.getByRole('button', { name: 'Try again' }).click();
  await expect(page.locator('li.session')).toHaveCount(1);
  await expect(page.getByRole('alert')).toHaveCount(0);
});

const adminEmail = uniqueEmail().replace('person-', 'loader-admin-');
const adminPassword = 'an admin passphrase';

test('an admin pointing at the Admin link fetches its chunk ahead, and the page works', async ({ page }) => {
  serverCli(['admin', 'create', '--email', adminEmail, '--name', 'Chunk Admin'], `${adminPassword}\n`);
  const wasm = watchWasm(page);
  await logIn(page, adminEmail, adminPassword);
  await page.waitForLoadState('networkidle');
  const before = wasm.count();
  // Pointing at the link fetches the admin chunk ahead of the click.
  const ahead = page.waitForRequest(ADMIN_WASM);
  await page.getByRole('link', { name: 'Admin', exact: true }).hover();
  await ahead;
  await page.getByRole('link', { name: 'Admin', exact: true }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole('heading', { name: 'People' })).toBeVisible();
  // It works: a search answers in the page.
  await page.getByLabel('Search people').fill(adminEmail);
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator(`tr[data-email="${adminEmail}"]`)).toHaveCount(1);
  const fetched = (await wasm.all()).slice(before);
  expect(fetched.length).toBeGreaterThan(0);
  for (const file of fetched) expect(file.name).toMatch(LAZY_WASM);
  console.log(`navigating to /admin: WASM ${kilobytes(fetched)} more in ${fetched.length} files`);
});

test('a person who is not an admin gets no admin chunk, not even at /admin', async ({ page, browser }) => {
  await register(page, uniqueEmail());
  // Signed in, with an empty cache, straight to /admin.
  const fresh = await browser.newContext({ storageState: await page.context().storageState() });
  const tab = await fresh.newPage();
  // Every request, even one that failed or was cut: the admin chunk is never asked for.
  const asked: string[] = [];
  tab.on('request', (request) => asked.push(new URL(request.url()).pathname));
  // This tab is not the fixture's page: its console is watched here.
  const errors: string[] = [];
  tab.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
  tab.on('pageerror', (error) => errors.push(error.message));
  await tab.goto('/admin');
  await expect(tab.getByRole('alert')).toHaveText('Only admins can see this page.');
  await tab.waitForLoadState('networkidle');
  await fresh.close();
  // The page itself ran from the main WASM; the admin part was never requested.
  expect(asked.filter((path) => MAIN_WASM.test(path.split('/').pop() ?? ''))).toHaveLength(1);
  expect(asked.filter((path) => ADMIN_WASM.test(path))).toEqual([]);
  expect(errors).toEqual([]);
});

test('files are served compressed and cached by their hashed names; pages never cached', async ({ request }) => {
  const page = await request.get('/login');
  expect(page.headers()['cache-control']).toBe('no-store');
  const html = await page.text();
  const named = (pattern: RegExp) => {
    const found = html.match(pattern)?.[0];
    expect(found, `${pattern} in the page`).toBeTruthy();
    return found!;
  };
  const files = [
    named(/\/pkg\/jwt-auth\.[A-Za-z0-9_-]{22}\.wasm/),
    named(/\/pkg\/jwt-auth\.[A-Za-z0-9_-]{22}\.js/),
    named(/\/pkg\/jwt-auth\.[A-Za-z0-9_-]{22}\.css/),
  ];
  for (const file of files) {
    const plain = await request.get(file, { headers: { 'Accept-Encoding': 'identity' } });
    expect(plain.status()).toBe(200);
    expect(plain.headers()['content-encoding']).toBeUndefined();
    for (const encoding of ['br', 'gzip']) {
      const answer = await request.get(file, { headers: { 'Accept-Encoding': encoding } });
      expect(answer.status(), `${file} ${encoding}`).toBe(200);
      expect(answer.headers()['content-encoding'], `${file} ${encoding}`).toBe(encoding);
      expect(answer.headers()['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(answer.headers()['vary']).toMatch(/accept-encoding/i);
      // Decoded, it is the same file.
      expect((await answer.body()).equals(await plain.body()), `${file} ${encoding}`).toBe(true);
    }
  }
  const wasm = await request.get(files[0], { headers: { 'Accept-Encoding': 'br' } });
  expect(wasm.headers()['content-type']).toBe('application/wasm');
  // A name without a hash may change meaning: asked about again before each use.
  const icon = await request.get('/favicon.svg', { headers: { 'Accept-Encoding': 'br' } });
  expect(icon.status()).toBe(200);
  expect(icon.headers()['cache-control']).toBe('no-cache');
  expect(icon.headers()['vary']).toMatch(/accept-encoding/i);
  const missing = await request.get('/pkg/jwt-auth.AAAAAAAAAAAAAAAAAAAAAA.wasm');
  expect(missing.status()).toBe(404);
  expect(missing.headers()['cache-control']).toBe('no-cache');
});
