// A session route behind nginx in a real browser: Debian's headless Chromium, driven by
// playwright-core, uses the app behind nginx (deploy/nginx/authgate-forward-auth.conf) whose
// route authgate decides (auth = "session", upstream = "none"), as a person would.
//
// Started by run.sh: nginx at EDGE_BASE (HTTPS) in front of the app (app.py, recording into
// EDGE_RECORDS) and of authgate's /open/ pages; alice (id 100, group 7, "correct horse
// battery").
//
// The flow, in one browser context with JavaScript off (nothing here needs it):
//   navigate to /app/page?x=1 → nginx asks authgate: 401 + X-Authgate-Sign-In → nginx's
//   error_page 401 → 302 to /open/signin?rd=... → the sign-in page, authgate's, through nginx
//   on the app's host → sign in → 303 back to the page asked for, the session cookie set for
//   this host → nginx asks authgate with the cookie: 200 + user_id → the app shows user 100 in
//   group 7, and never got the session cookie → reload → the app's form POST (same origin,
//   through nginx: the Host nginx passes lets authgate's same-origin rule see it) → a POST
//   with the cookie from another origin refused → logout through nginx → the sign-in page again.
//
// Each check prints PASS or FAIL; the last line is "N passed, N failed"; exit 1 on any failure.
// Screenshots: edge-signin.png, edge-app.png in ARTIFACTS.
//
// Environment (set by run.sh): EDGE_BASE, EDGE_RECORDS, ARTIFACTS, CHROMIUM, TMPDIR.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = required('EDGE_BASE');
const RECORDS = required('EDGE_RECORDS');
const ARTIFACTS = required('ARTIFACTS');
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

const USER = 'alice';
const USER_ID = '100';
const GROUP_ID = '7';
const PASSWORD = 'correct horse battery';
const USERNAME_LABEL = 'Phone, e-mail or user name';
const SESSION_COOKIE = '__Host-authgate-session';
const SIGNIN_PATH = '/open/signin';
const LOGOUT_PATH = '/open/logout';
const TARGET = '/app/page?x=1';
const NOTE_PATH = '/app/note';
const APP_COOKIE = 'app_theme=dark';

const OVERALL_TIMEOUT_MS = 90_000;
const STEP_TIMEOUT_MS = 15_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`browser.test.mjs: ${name} is not set (run tests/edge/run.sh)`);
    process.exit(2);
  }
  return value;
}

// process.exit runs Playwright's exit hook, which kills the browser it launched.
setTimeout(() => {
  console.log(`FAIL overall timeout: the browser test took more than ${OVERALL_TIMEOUT_MS / 1000} s`);
  console.log(`${passes} passed, ${failures + 1} failed`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS).unref();

let failures = 0;
let passes = 0;

async function check(name, body) {
  try {
    await body();
    passes += 1;
    console.log(`PASS ${name}`);
  } catch (error) {
    failures += 1;
    console.log(`FAIL ${name}`);
    console.log((error?.stack ?? String(error)).split('\n').map((l) => `     ${l}`).join('\n'));
  }
}

/** Everything the app received so far (app.py's records), headers as a lower-case object. */
function appRequests() {
  return readFileSync(RECORDS, 'utf8').split('\n').filter(Boolean).map((line) => {
    const record = JSON.parse(line);
    const headers = {};
    for (const [name, value] of record.headers) headers[name.toLowerCase()] = value;
    return { ...record, headers };
  });
}

function appLines(from) {
  return appRequests().slice(from).map((r) => `${r.method} ${r.target}`);
}

function sessionCookie(context) {
  return context.cookies(`${BASE}/`).then((all) => all.find((c) => c.name === SESSION_COOKIE));
}

function at(page, path) {
  const url = new URL(page.url());
  return `${url.origin}${url.pathname}` === `${BASE}${path}`;
}

async function shownIdentity(page) {
  return {
    user: (await page.locator('#user').innerText()).trim(),
    group: (await page.locator('#group').innerText()).trim(),
  };
}

/** Navigates to `target`; asserts nginx sent the browser to sign in, in one 302, and the
 *  sign-in page is there with the way back. */
async function expectSentToSignIn(page, target) {
  const response = await page.goto(`${BASE}${target}`);
  assert.equal(response.status(), 200);
  assert.ok(at(page, SIGNIN_PATH), `sent to sign in, at ${page.url()}`);
  const first = response.request().redirectedFrom();
  assert.equal(first?.url(), `${BASE}${target}`, 'the app\'s URL redirected');
  assert.equal(first.redirectedFrom(), null, 'in one hop');
  const redirect = await first.response();
  assert.equal(redirect.status(), 302);
  // authgate's sign-in URL (X-Authgate-Sign-In), as nginx's error_page passed it on.
  assert.equal(redirect.headers().location, `${SIGNIN_PATH}?${new URLSearchParams({ rd: target })}`);
  assert.equal(new URL(page.url()).searchParams.get('rd'), target);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.locator('input[type=hidden][name=rd]').getAttribute('value'), target);
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: EXECUTABLE,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 30_000,
  });
  console.log(`browser: ${EXECUTABLE} ${browser.version()}; nginx: ${BASE}`);
  try {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true, // the test's self-signed certificate
      javaScriptEnabled: false,
      viewport: { width: 1280, height: 800 },
      locale: 'en-US',
    });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    await flow(context, await context.newPage());
  } finally {
    await browser.close();
  }
}

async function flow(context, page) {
  let session;

  await check('a navigation to the session route without a session: nginx\'s 302 to authgate\'s sign-in page', async () => {
    const from = appRequests().length;
    await expectSentToSignIn(page, TARGET);
    // The page is authgate's, on the app's host (through nginx's /open/ location).
    assert.equal(await page.locator('p.sub').innerText(), `to continue to ${new URL(BASE).host}`);
    assert.deepEqual(appLines(from), [], 'nothing reached the app');
    assert.equal(await sessionCookie(context), undefined, 'no session yet');
    await page.screenshot({ path: join(ARTIFACTS, 'edge-signin.png'), fullPage: true });
  });

  await check('signing in through nginx: 303 back to the page asked for, which shows user 100 in group 7', async () => {
    const from = appRequests().length;
    await page.getByLabel(USERNAME_LABEL).fill(USER);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(`${BASE}${SIGNIN_PATH}`)),
      page.waitForURL((url) => `${url.origin}${url.pathname}` === `${BASE}/app/page`),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    assert.equal(answer.status(), 303);
    assert.equal(answer.headers().location, TARGET);
    const setCookie = (await answer.headerValue('set-cookie')) ?? '';
    assert.match(setCookie,
      new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; Path=/; Max-Age=\\d+; Secure; HttpOnly; SameSite=Lax$`, 'm'),
      setCookie);
    assert.equal(new URL(page.url()).search, '?x=1', 'the query came back too');
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    const requests = appRequests().slice(from);
    assert.deepEqual(requests.map((r) => `${r.method} ${r.target}`), [`GET ${TARGET}`],
      'one request reached the app (the sign-in itself went to authgate)');
    const [{ headers }] = requests;
    assert.equal(headers.user_id, USER_ID);
    assert.equal(headers.group_id, GROUP_ID);
    assert.equal(headers.cookie, undefined, 'no cookie: the session cookie was removed, the CSRF one is Path=/open');
    await page.screenshot({ path: join(ARTIFACTS, 'edge-app.png'), fullPage: true });
  });

  await check('the session cookie is the app host\'s: __Host-, host-only, Path=/, Secure, HttpOnly, SameSite=Lax', async () => {
    session = await sessionCookie(context);
    assert.ok(session, 'the session cookie is set');
    assert.equal(session.domain, new URL(BASE).hostname, 'host-only (no leading dot)');
    assert.equal(session.path, '/');
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
  });

  await check('a reload keeps the session; the app gets its own cookie, never the session cookie', async () => {
    const from = appRequests().length;
    const response = await page.reload();
    assert.equal(response.status(), 200);
    assert.equal(response.request().redirectedFrom(), null, 'no redirect');
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    const requests = appRequests().slice(from);
    assert.deepEqual(requests.map((r) => `${r.method} ${r.target}`), [`GET ${TARGET}`]);
    assert.equal(requests[0].headers.cookie, APP_COOKIE, 'only the app\'s own cookie');
    assert.ok(!readFileSync(RECORDS, 'utf8').includes(session.value), 'the session value never reached the app');
  });

  await check('the app\'s form POST (same origin) passes nginx and authgate with the identity', async () => {
    const from = appRequests().length;
    await page.getByLabel('Note').fill('milk & eggs');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${BASE}${NOTE_PATH}`),
      page.getByRole('button', { name: 'Save' }).click(),
    ]);
    assert.equal(response.status(), 200);
    await page.locator('#body').waitFor();
    assert.equal(await page.locator('#body').innerText(), 'note=milk+%26+eggs');
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    const requests = appRequests().slice(from);
    assert.deepEqual(requests.map((r) => `${r.method} ${r.target}`), [`POST ${NOTE_PATH}`]);
    const [{ headers }] = requests;
    assert.equal(headers.user_id, USER_ID);
    assert.equal(headers['sec-fetch-site'], 'same-origin');
    assert.equal(headers.origin, BASE);
    assert.equal(headers.cookie, APP_COOKIE);
  });

  await check('with the session cookie, outside the browser: another origin\'s POST and another user\'s user_id are refused', async () => {
    const from = appRequests().length;
    const cookie = `${SESSION_COOKIE}=${session.value}`;
    const send = (method, headers, body) => fetch(`${BASE}${NOTE_PATH}`, {
      method, headers: { cookie, ...headers }, body, redirect: 'manual',
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    let r = await send('POST', { ...form, origin: 'https://evil.example' }, 'note=pwned');
    assert.equal(r.status, 403, await r.text());
    r = await send('POST', form, 'note=pwned');
    assert.equal(r.status, 403, `no Origin at all: ${await r.text()}`);
    r = await send('GET', { accept: 'text/html', user_id: '101' });
    assert.equal(r.status, 403, await r.text());
    assert.deepEqual(appLines(from), [], 'nothing reached the app');
    // The same POST from the site's own origin passes (nginx told authgate the right host).
    r = await send('POST', { ...form, origin: BASE, accept: 'application/json' }, 'note=ok');
    const text = await r.text();
    assert.equal(r.status, 200, text);
    const got = JSON.parse(text);
    assert.equal(got.body, 'note=ok');
    assert.deepEqual(got.headers.filter(([n]) => /^(x[-_])?(user|group|impersonator)[-_]?id$/i.test(n)), [['user_id', USER_ID], ['group_id', GROUP_ID]]);
  });

  await check('logout through nginx (/open/logout, authgate\'s page): the cookie is cleared, the app asks to sign in again', async () => {
    await Promise.all([
      page.waitForURL((url) => url.pathname === LOGOUT_PATH),
      page.getByRole('link', { name: 'Sign out' }).click(),
    ]);
    await page.getByRole('heading', { name: 'Sign out' }).waitFor();
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(`${BASE}${LOGOUT_PATH}`)),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    assert.equal(response.status(), 200);
    await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    assert.equal(await sessionCookie(context), undefined, 'the session cookie is cleared');
    const from = appRequests().length;
    await expectSentToSignIn(page, TARGET);
    // The session ended at authgate, not only its cookie in this browser.
    await context.addCookies([session]);
    await expectSentToSignIn(page, TARGET);
    assert.deepEqual(appLines(from), [], 'nothing reached the app');
  });
}

main().then(
  () => {
    console.log(`${passes} passed, ${failures} failed`);
    process.exit(failures ? 1 : 0);
  },
  (error) => {
    console.log(`FAIL the browser test could not run: ${error?.stack ?? error}`);
    console.log(`${passes} passed, ${failures + 1} failed`);
    process.exit(1);
  },
);
