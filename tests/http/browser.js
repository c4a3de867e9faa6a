// SPDX-License-Identifier: MIT
// The browser walk of the latch-http test, in headless Debian chromium
// driven by playwright-core. Usage: node browser.js URL USER_DATA_DIR SCREENSHOT_DIR [MODE]
// Prints one JSON object with what it saw; exits non-zero on a failed step.
// With two-step, it walks a login whose stack asks a code after the
// password (the service of TwoStepBrowser in test_browser.py). With totp,
// it sets up two-factor authentication on /account/totp, reading the key
// from the page and making codes with oathtool, signs in with password and
// code, and turns it off (TotpBrowser). With password, a signed-in user
// changes the password; with expired, a login whose password must be
// changed first (PasswordBrowser).
'use strict';

const { execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const [base, userDataDir, shots, mode] = process.argv.slice(2);
const seen = { steps: [] };

function step(name, ok, detail) {
  seen.steps.push({ name, ok, detail });
  if (!ok)
    throw new Error(`${name}: ${detail}`);
}

// The one-step walk: errors, sign in, logout, a phone without JavaScript.
async function oneStep(context, page) {
  // 1. The protected page sends us to the form.
  await page.goto(base + '/app/page');
  const u1 = new URL(page.url());
  step('redirected to the login form', u1.pathname === '/login' && u1.searchParams.get('rd') === '/app/page',
       page.url());
  step('the form has labelled fields', await page.getByLabel('User name').count() === 1 &&
       await page.getByLabel('Password').count() === 1, 'labels');

  // 2. A wrong password shows an error.
  await page.getByLabel('User name').fill('demo');
  await page.getByLabel('Password').fill('not-the-password');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  const err = await page.locator('#error').textContent().catch(() => null);
  step('a wrong password shows an error', err === 'Wrong user name or password.', String(err));
  step('no session cookie after a failure',
       !(await context.cookies()).some((c) => c.name === '__Host-latch'), 'cookie set');
  await page.screenshot({ path: shots + '/browser-1-error.png' });

  // 3. The right password leads to the protected page, which names us.
  await page.getByLabel('Password').fill('demo-password');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  step('back on the protected page', new URL(page.url()).pathname === '/app/page', page.url());
  const user = await page.locator('#user').textContent();
  step('the page shows the user', user === 'demo', String(user));
  const cookie = (await context.cookies()).find((c) => c.name === '__Host-latch');
  step('the __Host- cookie is stored over http://localhost',
       !!cookie && cookie.secure && cookie.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/',
       JSON.stringify(cookie));
  await page.screenshot({ path: shots + '/browser-2-signed-in.png', fullPage: true });

  // 4. Logout, and the protected page asks for the login again.
  await Promise.all([page.waitForNavigation(), page.locator('#logout').click()]);
  step('logout lands on the form', new URL(page.url()).pathname === '/login', page.url());
  step('the cookie is gone', !(await context.cookies()).some((c) => c.name === '__Host-latch'), 'still there');
  await page.goto(base + '/app/page');
  step('the protected page redirects to login again', new URL(page.url()).pathname === '/login', page.url());
  await page.screenshot({ path: shots + '/browser-3-signed-out.png' });

  // 5. The form on a phone, with JavaScript off: no sideways scrolling,
  // and signing in still works (the page has no script to need).
  const nojs = await chromium.launchPersistentContext(userDataDir + '-nojs', {
    executablePath: '/usr/bin/chromium',
    headless: true,
    javaScriptEnabled: false,
    viewport: { width: 360, height: 640 },
    isMobile: true,
    hasTouch: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 120000,
  });
  try {
    nojs.setDefaultTimeout(60000);
    const p2 = nojs.pages()[0] || await nojs.newPage();
    await p2.goto(base + '/app/page');
    const box = await p2.locator('#password').boundingBox();
    step('the form fits a phone screen', box && box.x >= 0 && box.x + box.width <= 360, JSON.stringify(box));
    await p2.screenshot({ path: shots + '/browser-4-phone.png' });
    await p2.locator('#user').fill('demo');
    await p2.locator('#password').fill('demo-password');
    await Promise.all([p2.waitForNavigation(), p2.locator('button[type=submit]').click()]);
    step('signing in works without JavaScript', (await p2.locator('#user').textContent()) === 'demo', p2.url());
  } finally {
    await nojs.close();
  }
}

// Password, then a code on a second form; a wrong code; the reload of a
// used step; each form's fields and the step cookie.
async function twoStep(context, page) {
  const stepCookie = async () => (await context.cookies()).find((c) => c.name === '__Host-latch-step');
  const signIn = async () => {
    await page.goto(base + '/app/page');
    await page.getByLabel('User name').fill('demo');
    await page.getByLabel('Password').fill('demo-password');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  };

  // 1. User and password, then the code form.
  await signIn();
  // The first step answers the POST of the login form: the URL stays
  // /login, with no query.
  step('the password leads to the code form', new URL(page.url()).search === '' &&
       await page.locator('form[action="/login/step"]').count() === 1, page.url());
  const code = page.getByLabel('Code:');
  step('the code field is labelled, secret, a one-time code',
       await code.count() === 1 && await code.getAttribute('type') === 'password' &&
       await code.getAttribute('autocomplete') === 'one-time-code', await page.content());
  step('the info prompt is shown as text',
       (await page.locator('p.info').textContent()) === 'A_code_was_sent', await page.content());
  const c1 = await stepCookie();
  step('the conversation is in an HttpOnly, Secure, SameSite=Strict cookie',
       !!c1 && c1.httpOnly && c1.secure && c1.sameSite === 'Strict' && c1.path === '/', JSON.stringify(c1));
  step('the conversation id is not in the page or the URL',
       !(await page.content()).includes(c1.value) && !page.url().includes(c1.value), 'leaked');
  step('no session before the code', !(await context.cookies()).some((c) => c.name === '__Host-latch'), 'set');
  await page.screenshot({ path: shots + '/browser-5-code.png' });

  // 2. A wrong code: refused, the login form again, no session.
  await code.fill('000000');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Continue' }).click()]);
  const err = await page.locator('#error').textContent().catch(() => null);
  step('a wrong code is refused', err === 'Sign-in failed: a wrong password or code. Please start again.',
       String(err));
  step('no session after a wrong code', !(await context.cookies()).some((c) => c.name === '__Host-latch'), 'set');
  await page.screenshot({ path: shots + '/browser-6-refused.png' });

  // 3. The right code: the protected page, signed in.
  await signIn();
  await page.getByLabel('Code:').fill('424242');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Continue' }).click()]);
  step('the code leads back to the protected page', new URL(page.url()).pathname === '/app/page', page.url());
  step('the page shows the user', (await page.locator('#user').textContent()) === 'demo', page.url());
  const session = (await context.cookies()).find((c) => c.name === '__Host-latch');
  step('the session cookie is set as by a one-step login',
       !!session && session.secure && session.httpOnly && session.sameSite === 'Lax', JSON.stringify(session));
  step('the step cookie is gone', !(await stepCookie()), 'still there');
  await page.screenshot({ path: shots + '/browser-7-two-step-signed-in.png', fullPage: true });

  // 4. The step's address opened again (a reload, a bookmark): a clear
  // page whose link starts again.
  await page.goto(base + '/login/step');
  const expired = await page.locator('#error').textContent().catch(() => null);
  step('a used step is a clear page', /expired or was already used/.test(String(expired)), String(expired));
  await page.screenshot({ path: shots + '/browser-8-expired.png' });
  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Start again' }).click()]);
  step('its link leads to the login form', new URL(page.url()).pathname === '/login' &&
       await page.getByLabel('User name').count() === 1, page.url());
}

// The code of base32 `secret` now (period 10 s, as TotpBrowser's line).
const totp = (secret) => execFileSync('oathtool', ['--totp', '-b', '-s', '10s', secret]).toString().trim();

// A code of a later time step than `after`.
async function nextCode(secret, after) {
  for (;;) {
    const c = totp(secret);
    if (c !== after)
      return c;
    await new Promise((res) => setTimeout(res, 500));
  }
}

async function totpWalk(context, page) {
  const signIn = async (withCode) => {
    await page.goto(base + '/account/totp');
    const u = new URL(page.url());
    step('the account page asks to sign in first', u.pathname === '/login' &&
         u.searchParams.get('rd') === '/account/totp', page.url());
    await page.getByLabel('User name').fill('demo');
    await page.getByLabel('Password').fill('demo-password');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  };

  // 1. Signed in with the password alone: the account page, factor off.
  await signIn();
  step('back on the account page', new URL(page.url()).pathname === '/account/totp', page.url());
  step('the factor is off', (await page.locator('#status').getAttribute('data-enrolled')) === 'no',
       await page.content());
  await page.screenshot({ path: shots + '/account-1-off.png', fullPage: true });

  // 2. A wrong password changes nothing.
  await page.getByLabel('Your password, to set it up').fill('not-the-password');
  await Promise.all([page.waitForNavigation(), page.locator('#enroll').click()]);
  step('a wrong password is refused', (await page.locator('#error').textContent()) ===
       'Wrong password: nothing was changed.', await page.content());

  // 3. The password: the QR code page.
  await page.getByLabel('Your password, to set it up').fill('demo-password');
  const [resp] = await Promise.all([page.waitForNavigation(), page.locator('#enroll').click()]);
  step('the QR code page is not cached', resp.headers()['cache-control'] === 'no-store',
       JSON.stringify(resp.headers()));
  const qr = await page.locator('svg#qr').boundingBox();
  step('the QR code is drawn, square, on the page', !!qr && qr.width >= 150 && Math.abs(qr.width - qr.height) < 1,
       JSON.stringify(qr));
  const secret = (await page.locator('#secret').textContent()).trim();
  step('the key for typing in is shown', /^[A-Z2-7]{32}$/.test(secret), secret);
  step('the key is not in the URL', !page.url().includes(secret), page.url());
  seen.secret = secret; // for the test to compare the QR code with (a throwaway key)
  await page.screenshot({ path: shots + '/account-2-qr.png', fullPage: true });

  // 4. A code from the key (oathtool, as an app would) turns it on.
  let code = totp(secret);
  await page.getByLabel('The code the app shows').fill(code);
  await Promise.all([page.waitForNavigation(), page.locator('#confirm').click()]);
  step('the first code turns it on', (await page.locator('#status').getAttribute('data-enrolled')) === 'yes',
       await page.content());
  step('with a notice', /is on/.test(await page.locator('#notice').textContent()), await page.content());
  await page.screenshot({ path: shots + '/account-3-on.png', fullPage: true });

  // 5. Sign out; signing in now asks for a code after the password.
  await Promise.all([page.waitForNavigation(), page.locator('#logout').click()]);
  step('signed out', !(await context.cookies()).some((c) => c.name === '__Host-latch'), 'cookie left');
  await signIn();
  const field = page.getByLabel('Verification code:');
  step('the password leads to the code form', await field.count() === 1, await page.content());
  await page.screenshot({ path: shots + '/account-4-code.png', fullPage: true });
  code = await nextCode(secret, code);
  await field.fill(code);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Continue' }).click()]);
  step('password and code sign in', new URL(page.url()).pathname === '/account/totp' &&
       (await page.locator('#user').textContent()) === 'demo', page.url());

  // 6. Turning it off: the password, then the code.
  await page.getByLabel('Your password, to turn it off').fill('demo-password');
  await Promise.all([page.waitForNavigation(), page.locator('#remove').click()]);
  const again = page.getByLabel('Verification code:');
  step('turning it off asks for a code too', await again.count() === 1, await page.content());
  code = await nextCode(secret, code);
  await again.fill(code);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Continue' }).click()]);
  step('it is off', (await page.locator('#status').getAttribute('data-enrolled')) === 'no', await page.content());
  await page.screenshot({ path: shots + '/account-5-removed.png', fullPage: true });
}

// The password page: from the protected page's link, the current
// password, two new ones that differ (refused, asked again), the right
// ones, the done page, back to the page still signed in; then the old
// password no longer signs in and the new one does.
const NEW_PASSWORD = 'a-new-passphrase';

async function changePassword(context, page) {
  const click = async (locator) => Promise.all([page.waitForNavigation(), locator.click()]);
  const heading = async () => page.locator('h1').textContent();
  const signIn = async (password) => {
    await page.getByLabel('User name').fill('demo');
    await page.getByLabel('Password', { exact: true }).fill(password);
    await click(page.getByRole('button', { name: 'Sign in' }));
  };

  await page.goto(base + '/app/page');
  await signIn('demo-password');
  step('signed in', (await page.locator('#user').textContent()) === 'demo', page.url());
  const before = (await context.cookies()).find((c) => c.name === '__Host-latch');

  // 1. The page's link leads to the password page, which names the user.
  await click(page.locator('#password'));
  const u = new URL(page.url());
  step('the link leads to /password', u.pathname === '/password' && u.searchParams.get('rd') === '/app/page',
       page.url());
  step('the password page names the user', (await heading()) === 'Change your password' &&
       (await page.locator('#user').textContent()) === 'demo', await page.content());
  await page.screenshot({ path: shots + '/browser-9-password.png' });

  // 2. Its button: the current password, a step form of the change.
  await click(page.getByRole('button', { name: 'Change password' }));
  const current = page.getByLabel('Current password:', { exact: true });
  step('the current password is asked', await current.count() === 1 &&
       await current.getAttribute('type') === 'password' &&
       await current.getAttribute('autocomplete') === 'current-password', await page.content());
  step('the step is titled as a password change', (await heading()) === 'Change your password', await heading());
  await page.screenshot({ path: shots + '/browser-10-password-current.png' });
  await current.fill('demo-password');
  await click(page.getByRole('button', { name: 'Continue' }));

  // 3. The new password twice; two that differ are refused and asked again.
  const fresh = page.getByLabel('New password:', { exact: true });
  const again = page.getByLabel('Retype new password:', { exact: true });
  step('the new password is asked twice', await fresh.count() === 1 && await again.count() === 1 &&
       await fresh.getAttribute('autocomplete') === 'new-password' &&
       await again.getAttribute('autocomplete') === 'new-password', await page.content());
  await page.screenshot({ path: shots + '/browser-11-password-new.png' });
  await fresh.fill(NEW_PASSWORD);
  await again.fill(NEW_PASSWORD + '-typo');
  await click(page.getByRole('button', { name: 'Continue' }));
  const error = await page.locator('p.error').textContent().catch(() => null);
  step('two different new passwords are refused, with the reason',
       error === 'Sorry, passwords do not match.' && await page.getByLabel('New password:', { exact: true }).count() === 1,
       String(error));
  await page.screenshot({ path: shots + '/browser-12-password-mismatch.png' });
  await page.getByLabel('New password:', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Retype new password:', { exact: true }).fill(NEW_PASSWORD);
  await click(page.getByRole('button', { name: 'Continue' }));

  // 4. Done: the page says so; this session stays.
  step('the done page', (await heading()) === 'Password changed' &&
       /has been changed/.test(await page.locator('#done').textContent()), await page.content());
  step('the done page says the other session was signed out',
       /1 other session of this account was signed out/.test(await page.locator('#revoked').textContent()),
       await page.locator('#revoked').textContent());
  step('the step cookie is gone', !(await context.cookies()).some((c) => c.name === '__Host-latch-step'),
       'still there');
  await page.screenshot({ path: shots + '/browser-13-password-changed.png' });
  const after = (await context.cookies()).find((c) => c.name === '__Host-latch');
  step('the same session cookie', !!after && after.value === before.value, 'changed');
  await click(page.locator('#continue'));
  step('back on the page, still signed in', new URL(page.url()).pathname === '/app/page' &&
       (await page.locator('#user').textContent()) === 'demo', page.url());

  // 5. Signed out: the old password is refused, the new one signs in.
  await click(page.locator('#logout'));
  await page.goto(base + '/app/page');
  await signIn('demo-password');
  step('the old password is refused', (await page.locator('#error').textContent()) ===
       'Wrong user name or password.', page.url());
  await signIn(NEW_PASSWORD);
  step('the new password signs in', (await page.locator('#user').textContent()) === 'demo', page.url());
}

// A login whose password must be changed: the same forms go on to the new
// password, and the login ends signed in.
async function expiredPassword(context, page) {
  const click = async (locator) => Promise.all([page.waitForNavigation(), locator.click()]);
  await page.goto(base + '/app/page');
  await page.getByLabel('User name').fill('demo');
  await page.getByLabel('Password', { exact: true }).fill('demo-password');
  await click(page.getByRole('button', { name: 'Sign in' }));
  step('the login goes on to a password change', (await page.locator('h1').textContent()) ===
       'Change your password' && (await page.locator('#note').textContent()) ===
       'Your password must be changed before you can sign in.', await page.content());
  step('only the new password is asked (the login gave the current one)',
       await page.getByLabel('New password:', { exact: true }).count() === 1 &&
       await page.getByLabel('Retype new password:', { exact: true }).count() === 1 &&
       await page.getByLabel('Current password:', { exact: true }).count() === 0, await page.content());
  step('no session yet', !(await context.cookies()).some((c) => c.name === '__Host-latch'), 'set');
  await page.screenshot({ path: shots + '/browser-14-expired.png' });
  await page.getByLabel('New password:', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('Retype new password:', { exact: true }).fill(NEW_PASSWORD);
  await click(page.getByRole('button', { name: 'Continue' }));
  step('signed in on the page asked for', new URL(page.url()).pathname === '/app/page' &&
       (await page.locator('#user').textContent()) === 'demo', page.url());
  const session = (await context.cookies()).find((c) => c.name === '__Host-latch');
  step('the session cookie is set as by any login',
       !!session && session.secure && session.httpOnly && session.sameSite === 'Lax', JSON.stringify(session));
  await page.screenshot({ path: shots + '/browser-15-expired-signed-in.png', fullPage: true });
}

(async () => {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 120000,
  });
  context.setDefaultTimeout(60000);
  try {
    const page = context.pages()[0] || await context.newPage();
    if (mode === 'two-step')
      await twoStep(context, page);
    else if (mode === 'totp')
      await totpWalk(context, page);
    else if (mode === 'password')
      await changePassword(context, page);
    else if (mode === 'expired')
      await expiredPassword(context, page);
    else
      await oneStep(context, page);
    seen.ok = true;
  } catch (e) {
    seen.ok = false;
    seen.error = String(e && e.stack || e);
  } finally {
    await context.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
  process.exit(seen.ok ? 0 : 1);
})().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack || e), steps: seen.steps }) + '\n');
  process.exit(1);
});
