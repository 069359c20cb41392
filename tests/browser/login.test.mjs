// The login page in a real browser: Debian's headless Chromium driven by playwright-core.
//
// Started by run.sh, which runs a gateway and registers alice (id 100, "correct horse battery"),
// the confidential client `web` ("Web Shop"; authorization_code, refresh_token, implicit;
// redirect URI CLIENT_ORIGIN/cb; scope read) and the public client `spa` (PKCE; redirect URI
// CLIENT_ORIGIN/spa/cb). CLIENT_ORIGIN (http://127.0.0.1:PORT) is served by this process for
// both clients and records every request, so "nothing went to the client" can be asserted.
// A real server rather than page.route: Playwright calls a route handler only for the first URL
// of a redirect chain, and the gateway's redirects are exactly what is under test.
//
// The main flows run with JavaScript disabled (the page must work without it); the phone and
// PKCE checks run with it enabled (the layout is measured by script, CSP violations are logged).
// Each check prints PASS or FAIL; the last line is "N passed, N failed"; exit 1 on any failure.
//
// Environment: AUTHGATE_BASE (https://127.0.0.1:PORT), CLIENT_ORIGIN, ARTIFACTS (screenshot
// dir), CHROMIUM (default /usr/bin/chromium), NODE_EXTRA_CA_CERTS (the gateway's dev
// certificate, so this process's fetch verifies the gateway).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = required('AUTHGATE_BASE');
const CLIENT_ORIGIN = required('CLIENT_ORIGIN');
const ARTIFACTS = required('ARTIFACTS');
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

const CLIENT_ID = 'web';
const CLIENT_SECRET = 'web-secret-0123456789abcdef';
const CLIENT_NAME = 'Web Shop';
const REDIRECT_URI = `${CLIENT_ORIGIN}/cb`;
const SPA_REDIRECT_URI = `${CLIENT_ORIGIN}/spa/cb`;
const USER = 'alice';
const USER_ID = '100';
const PASSWORD = 'correct horse battery';
const WRONG_PASSWORD_MESSAGE = 'The login name or the password is wrong.';
const USERNAME_LABEL = 'Phone, e-mail or user name';

// A run takes a few seconds; these only bound a hang.
const OVERALL_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 15_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`login.test.mjs: ${name} is not set (run tests/browser/run.sh)`);
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

// --- small helpers ------------------------------------------------------------------------------

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
    console.log(indent(error?.stack ?? String(error)));
  }
}

function indent(text) {
  return text.split('\n').map((line) => `     ${line}`).join('\n');
}

function authorizeUrl(params = {}) {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    state: 'xyz123',
    scope: 'read',
    ...params,
  });
  return `${BASE}/open/authorize/index?${query}`;
}

/** Posts a form to the gateway (the client's back channel, not the browser). */
async function post(path, fields) {
  const response = await fetch(`${BASE}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

/** What the upstream behind GET /echo sees of a request made with this access token. */
async function echo(accessToken) {
  const response = await fetch(`${BASE}/echo`, {
    headers: { authorization: `Bearer ${accessToken}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `GET /echo with the access token: ${response.status} ${text}`);
  return JSON.parse(text);
}

function exchange(code) {
  return post('/oauth2/authorize', {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
  });
}

// --- the clients' side: CLIENT_ORIGIN, served here ----------------------------------------------

const clientHits = [];

function serveClient(request, response) {
  const url = new URL(request.url, CLIENT_ORIGIN);
  if (url.pathname === '/favicon.ico') {
    // The browser's own request, part of no flow.
    response.writeHead(404).end();
    return;
  }
  clientHits.push(url.href);
  if (url.pathname === '/start') {
    // The client's own page, linking to the gateway, as a person meets it.
    const target = (url.searchParams.get('to') ?? '').replace(/&/g, '&amp;').replace(/"/g, '&quot;');
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(`<!doctype html><title>Web Shop</title><a id="signin" href="${target}">Sign in with authgate</a>`);
    return;
  }
  response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  response.end('client callback');
}

/** A browser context (JavaScript off unless asked) and the client requests made since. */
async function newContext(browser, options = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, // the gateway's self-signed dev certificate
    javaScriptEnabled: false,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
    ...options,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const from = clientHits.length;
  const hits = () => clientHits.slice(from);
  return { context, hits };
}

function expectLoginForm(page) {
  return Promise.all([
    page.getByRole('heading', { name: 'Sign in' }).waitFor(),
    page.getByLabel(USERNAME_LABEL).waitFor(),
    page.getByLabel('Password', { exact: true }).waitFor(),
  ]);
}

/** Types the credentials and presses Sign in (or Enter, or a tap); resolves on the client. */
async function signIn(page, { password = PASSWORD, submit = 'click', redirectUri = REDIRECT_URI } = {}) {
  await page.getByLabel(USERNAME_LABEL).fill(USER);
  const field = page.getByLabel('Password', { exact: true });
  await field.fill(password);
  const button = page.getByRole('button', { name: 'Sign in' });
  await Promise.all([
    page.waitForURL((url) => `${url.origin}${url.pathname}` === redirectUri),
    submit === 'enter' ? field.press('Enter') : submit === 'tap' ? button.tap() : button.click(),
  ]);
  return new URL(page.url());
}

function sessionCookie(context) {
  return context.cookies(`${BASE}/open/`).then((all) => all.find((c) => c.name === 'authgate_session'));
}

function onGateway(page) {
  assert.ok(page.url().startsWith(`${BASE}/`), `expected to stay on the gateway, at ${page.url()}`);
}

// --- the checks ---------------------------------------------------------------------------------

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const client = http.createServer(serveClient);
  await new Promise((resolve, reject) => {
    client.once('error', reject);
    client.listen(Number(new URL(CLIENT_ORIGIN).port), '127.0.0.1', resolve);
  });
  try {
    const browser = await chromium.launch({
      executablePath: EXECUTABLE,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 30_000,
    });
    console.log(`browser: ${EXECUTABLE} ${browser.version()}; gateway: ${BASE}; client: ${CLIENT_ORIGIN}`);
    try {
      await codeFlow(browser);
      await enterSubmitsSignIn(browser);
      await cancel(browser);
      await fromClientPage(browser);
      await implicitFlow(browser);
      await badRequests(browser);
      await phone(browser);
      await pkce(browser);
    } finally {
      await browser.close();
    }
  } finally {
    client.closeAllConnections();
    client.close();
  }
}

/** The main flow, without JavaScript: page, wrong password, right password, code, tokens. */
async function codeFlow(browser) {
  const { context, hits } = await newContext(browser);
  const page = await context.newPage();
  let firstCode;
  let tokens;

  await check('the authorize URL shows the login form for "Web Shop" (JavaScript disabled)', async () => {
    const response = await page.goto(authorizeUrl());
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-type'] ?? '', /^text\/html/);
    await expectLoginForm(page);
    assert.equal(await page.title(), 'Sign in');
    assert.equal(await page.locator('p.sub').innerText(), `to continue to ${CLIENT_NAME}`);
    assert.equal(await page.locator('script').count(), 0, 'the page needs no script');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).waitFor();
  });

  await check('the form fields have labels and autocomplete hints; CSRF double submit', async () => {
    const username = page.getByLabel(USERNAME_LABEL);
    const password = page.getByLabel('Password', { exact: true });
    assert.equal(await username.getAttribute('name'), 'username');
    assert.equal(await username.getAttribute('autocomplete'), 'username');
    assert.equal(await password.getAttribute('type'), 'password');
    assert.equal(await password.getAttribute('autocomplete'), 'current-password');
    const hidden = {};
    for (const input of await page.locator('form input[type=hidden]').all()) {
      hidden[await input.getAttribute('name')] = await input.getAttribute('value');
    }
    assert.equal(hidden.client_id, CLIENT_ID);
    assert.equal(hidden.redirect_uri, REDIRECT_URI);
    assert.equal(hidden.state, 'xyz123');
    assert.equal(hidden.response_type, 'code');
    assert.match(hidden.csrf_token ?? '', /^[A-Za-z0-9_-]{43}$/);
    const csrf = (await context.cookies(`${BASE}/open/`)).find((c) => c.name === 'authgate_csrf');
    assert.ok(csrf, 'the authgate_csrf cookie is set');
    assert.equal(csrf.value, hidden.csrf_token, 'cookie and field match');
    assert.equal(csrf.path, '/open');
    assert.equal(csrf.secure, true);
    assert.equal(csrf.httpOnly, true);
    assert.equal(csrf.sameSite, 'Lax');
  });

  await check('screenshot login.png (desktop)', async () => {
    await page.screenshot({ path: join(ARTIFACTS, 'login.png'), fullPage: true });
  });

  await check('a wrong password: 400, the form again with the error (role=alert), no code', async () => {
    await page.getByLabel(USERNAME_LABEL).fill(USER);
    await page.getByLabel('Password', { exact: true }).fill('wrong password');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    // 400, not 401: a 401 needs an HTTP authentication challenge, and a form is none.
    assert.equal(response.status(), 400);
    assert.equal(response.headers().location, undefined, 'no redirect');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    onGateway(page);
    assert.equal((await alert.innerText()).trim(), WRONG_PASSWORD_MESSAGE);
    assert.deepEqual(hits(), [], 'nothing went to the client');
    assert.equal(await page.getByLabel(USERNAME_LABEL).inputValue(), USER, 'the login name is kept');
    assert.equal(await page.getByLabel('Password', { exact: true }).inputValue(), '', 'the password is not');
    assert.equal(await page.getByLabel('Password', { exact: true }).getAttribute('aria-describedby'), 'error');
    assert.equal(await sessionCookie(context), undefined, 'no login session');
  });

  await check('screenshot login-error.png', async () => {
    await page.screenshot({ path: join(ARTIFACTS, 'login-error.png'), fullPage: true });
  });

  await check('the right password lands on the redirect URI with a code and the state', async () => {
    const url = await signIn(page);
    assert.equal(url.searchParams.get('error'), null, `error in ${url}`);
    assert.equal(url.searchParams.get('state'), 'xyz123');
    firstCode = url.searchParams.get('code');
    assert.ok(firstCode, `a code in ${url}`);
    assert.equal((await page.textContent('body')).trim(), 'client callback');
    assert.equal(hits().length, 1, `one request to the client: ${hits()}`);
    const session = await sessionCookie(context);
    assert.ok(session, 'the authgate_session cookie is set');
    assert.equal(session.path, '/open');
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    const proxied = await context.cookies(`${BASE}/echo`);
    assert.deepEqual(proxied, [], 'no gateway cookie travels to proxied routes');
  });

  await check('the code exchanges for tokens at POST /oauth2/authorize', async () => {
    assert.ok(firstCode, 'no code from the previous step');
    const { status, json, text } = await exchange(firstCode);
    assert.equal(status, 200, text);
    assert.equal(typeof json?.access_token, 'string', text);
    assert.equal(typeof json.refresh_token, 'string', text);
    assert.match(json.token_type, /^bearer$/i);
    assert.ok(json.expires_in > 0, `expires_in ${json.expires_in}`);
    tokens = json;
  });

  await check('the access token works on GET /echo as user 100', async () => {
    assert.ok(tokens, 'no tokens from the previous step');
    const body = await echo(tokens.access_token);
    assert.equal(body.headers.user_id, USER_ID, JSON.stringify(body.headers));
  });

  await check('the code is single use', async () => {
    assert.ok(firstCode, 'no code');
    const { status, json, text } = await exchange(firstCode);
    assert.equal(status, 400, text);
    assert.equal(json?.error, 'invalid_grant', text);
  });

  await check('signed in: the authorize URL goes straight back with a new code (303, no form)', async () => {
    const before = hits().length;
    const response = await page.goto(authorizeUrl({ state: 'again' }));
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, REDIRECT_URI);
    assert.equal(url.searchParams.get('state'), 'again');
    const code = url.searchParams.get('code');
    assert.ok(code, `a code in ${url}`);
    assert.notEqual(code, firstCode);
    const first = response.request().redirectedFrom();
    assert.ok(first?.url().startsWith(`${BASE}/open/authorize/index?`), 'the gateway redirected');
    assert.equal(first.redirectedFrom(), null, 'in one hop');
    assert.equal((await first.response()).status(), 303);
    assert.equal(hits().length, before + 1);
    const { status, text } = await exchange(code);
    assert.equal(status, 200, text);
  });

  await check('signed in, an unregistered redirect_uri still shows the error page and goes nowhere', async () => {
    const before = hits().length;
    const response = await page.goto(authorizeUrl({ redirect_uri: `${REDIRECT_URI}/` }));
    assert.equal(response.status(), 400);
    onGateway(page);
    await page.getByRole('heading', { name: 'Invalid redirect address' }).waitFor();
    assert.equal(hits().length, before);
  });

  await context.close();
}

/** Sign in comes first in the form, so Enter submits it, not Cancel. */
async function enterSubmitsSignIn(browser) {
  const { context, hits } = await newContext(browser);
  const page = await context.newPage();
  await check('Enter in the password field signs in (not Cancel)', async () => {
    await page.goto(authorizeUrl({ state: 'enter' }));
    await expectLoginForm(page);
    const url = await signIn(page, { submit: 'enter' });
    assert.equal(url.searchParams.get('error'), null, `error in ${url}`);
    assert.ok(url.searchParams.get('code'), `a code in ${url}`);
    assert.equal(url.searchParams.get('state'), 'enter');
    assert.equal(hits().length, 1);
  });
  await context.close();
}

async function cancel(browser) {
  const { context } = await newContext(browser);
  const page = await context.newPage();
  await check('Cancel goes back to the redirect URI with error=access_denied and the state', async () => {
    await page.goto(authorizeUrl());
    await expectLoginForm(page);
    await Promise.all([
      page.waitForURL((url) => `${url.origin}${url.pathname}` === REDIRECT_URI),
      page.getByRole('button', { name: 'Cancel' }).click(),
    ]);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('error'), 'access_denied');
    assert.equal(url.searchParams.get('state'), 'xyz123');
    assert.equal(url.searchParams.get('code'), null);
    assert.equal(await sessionCookie(context), undefined, 'no login session after Cancel');
  });
  await context.close();
}

/**
 * As in life: the person follows a link on the client's page (another origin, and another site:
 * http against https, so the SameSite=Strict CSRF cookie is not sent on that first GET), signs
 * in, then follows the link again while signed in (the SameSite=Lax session cookie is sent).
 */
async function fromClientPage(browser) {
  const { context } = await newContext(browser);
  const page = await context.newPage();
  const start = (state) => `${CLIENT_ORIGIN}/start?to=${encodeURIComponent(authorizeUrl({ state }))}`;
  await check('from a link on the client\'s page: sign in works, with a second sign-in tab open', async () => {
    await page.goto(start('link1'));
    await Promise.all([page.waitForURL(`${BASE}/**`), page.click('#signin')]);
    await expectLoginForm(page);
    // A second tab from the client's site must not invalidate the first tab's form (its CSRF
    // cookie is sent on that cross-site navigation, so it is kept, not replaced).
    const second = await context.newPage();
    await second.goto(start('link1b'));
    await Promise.all([second.waitForURL(`${BASE}/**`), second.click('#signin')]);
    await expectLoginForm(second);
    await second.close();
    const url = await signIn(page);
    assert.equal(url.searchParams.get('error'), null, `error in ${url}`);
    assert.ok(url.searchParams.get('code'), `a code in ${url}`);
    assert.equal(url.searchParams.get('state'), 'link1');
  });
  await check('from a link on the client\'s page while signed in: straight back with a code', async () => {
    await page.goto(start('link2'));
    await Promise.all([
      page.waitForURL((url) => `${url.origin}${url.pathname}` === REDIRECT_URI),
      page.click('#signin'),
    ]);
    const url = new URL(page.url());
    assert.ok(url.searchParams.get('code'), `a code in ${url}`);
    assert.equal(url.searchParams.get('state'), 'link2');
  });
  await context.close();
}

async function implicitFlow(browser) {
  const { context, hits } = await newContext(browser);
  const page = await context.newPage();
  await check('the implicit flow lands on the redirect URI with the access token in the fragment', async () => {
    const query = new URLSearchParams({
      response_type: 'token', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, state: 's1',
    });
    await page.goto(`${BASE}/open/implicit?${query}`);
    await expectLoginForm(page);
    assert.equal(await page.locator('p.sub').innerText(), `to continue to ${CLIENT_NAME}`);
    const url = await signIn(page);
    assert.equal(url.search, '', `nothing in the query: ${url}`);
    const fragment = new URLSearchParams(url.hash.slice(1));
    assert.ok(fragment.get('access_token'), `an access token in ${url}`);
    assert.equal(fragment.get('token_type'), 'Bearer');
    assert.ok(Number(fragment.get('expires_in')) > 0, `expires_in in ${url}`);
    assert.equal(fragment.get('state'), 's1');
    assert.equal(fragment.get('refresh_token'), null, 'never a refresh token in the implicit flow');
    assert.equal(fragment.get('code'), null);
    // The fragment stays in the browser: the client's server saw the bare redirect URI.
    assert.deepEqual(hits(), [REDIRECT_URI]);
    const body = await echo(fragment.get('access_token'));
    assert.equal(body.headers.user_id, USER_ID);
  });
  await context.close();
}

/** The client and the redirect URI are checked first: a mismatch is shown, never redirected. */
async function badRequests(browser) {
  const { context, hits } = await newContext(browser);
  const page = await context.newPage();
  await check('a bad redirect_uri shows "Invalid redirect address" and goes nowhere', async () => {
    const response = await page.goto(authorizeUrl({ redirect_uri: `${REDIRECT_URI}/` }));
    assert.equal(response.status(), 400);
    onGateway(page);
    await page.getByRole('heading', { name: 'Invalid redirect address' }).waitFor();
    await page.getByRole('alert').waitFor();
    assert.equal(await page.locator('form').count(), 0, 'no login form');
    assert.deepEqual(hits(), []);
  });
  await check('an unknown client_id shows "Unknown application" and goes nowhere', async () => {
    const response = await page.goto(authorizeUrl({ client_id: 'nobody' }));
    assert.equal(response.status(), 400);
    onGateway(page);
    await page.getByRole('heading', { name: 'Unknown application' }).waitFor();
    assert.deepEqual(hits(), []);
  });
  await context.close();
}

/** A phone: the form fits, is large enough to tap, and its style sheet passes the CSP. */
async function phone(browser) {
  const width = 390;
  const { context } = await newContext(browser, {
    javaScriptEnabled: true,
    viewport: { width, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  await check(`phone-sized viewport (${width}x844): no horizontal scrolling, everything visible`, async () => {
    await page.goto(authorizeUrl());
    await expectLoginForm(page);
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= width, `scrollWidth ${scrollWidth}`);
    for (const locator of [
      page.getByLabel(USERNAME_LABEL),
      page.getByLabel('Password', { exact: true }),
      page.getByRole('button', { name: 'Sign in' }),
      page.getByRole('button', { name: 'Cancel' }),
    ]) {
      const box = await locator.boundingBox();
      assert.ok(box, 'visible');
      assert.ok(box.x >= 0 && box.x + box.width <= width, `inside the viewport: ${JSON.stringify(box)}`);
      assert.ok(box.height >= 40, `large enough to tap: ${JSON.stringify(box)}`);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'login-mobile.png'), fullPage: true });
  });
  await check('the page\'s style sheet is applied (allowed by its CSP hash, no violation)', async () => {
    const background = await page.getByRole('button', { name: 'Sign in' })
      .evaluate((button) => getComputedStyle(button).backgroundColor);
    assert.equal(background, 'rgb(37, 99, 235)');
    assert.deepEqual(consoleErrors.filter((e) => /Content Security Policy/i.test(e)), []);
  });
  await check('signing in on the phone (tapping Sign in) lands on the redirect URI with a code', async () => {
    const url = await signIn(page, { submit: 'tap' });
    assert.ok(url.searchParams.get('code'), `a code in ${url}`);
    assert.equal(url.searchParams.get('state'), 'xyz123');
  });
  await context.close();
}

/** The public client: code flow with PKCE (S256), exchanged at /oauth2/token without a secret. */
async function pkce(browser) {
  const { context } = await newContext(browser, { javaScriptEnabled: true });
  const page = await context.newPage();
  await check('public client with PKCE: a wrong code_verifier is refused, the right one gets tokens', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'spa',
      redirect_uri: SPA_REDIRECT_URI,
      state: 'pkce1',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    const redeem = (code, codeVerifier) => post('/oauth2/token', {
      grant_type: 'authorization_code', code, redirect_uri: SPA_REDIRECT_URI, client_id: 'spa',
      code_verifier: codeVerifier,
    });

    await page.goto(`${BASE}/open/authorize/index?${query}`);
    await expectLoginForm(page);
    const landed = await signIn(page, { redirectUri: SPA_REDIRECT_URI });
    assert.equal(landed.searchParams.get('state'), 'pkce1');
    const code = landed.searchParams.get('code');
    assert.ok(code, `a code in ${landed}`);
    const wrong = await redeem(code, randomBytes(32).toString('base64url'));
    assert.equal(wrong.status, 400, `a wrong code_verifier: ${wrong.text}`);
    assert.equal(wrong.json?.error, 'invalid_grant', wrong.text);
    // A failed exchange burns the code (grant/code.rs), so the right verifier is too late for it.
    const late = await redeem(code, verifier);
    assert.equal(late.json?.error, 'invalid_grant', `the burnt code again: ${late.text}`);

    // Still signed in: a new authorization request comes straight back with a new code.
    await page.goto(`${BASE}/open/authorize/index?${query}`);
    const again = new URL(page.url());
    assert.equal(`${again.origin}${again.pathname}`, SPA_REDIRECT_URI, `signed in: ${again}`);
    const { status, json, text } = await redeem(again.searchParams.get('code'), verifier);
    assert.equal(status, 200, text);
    assert.equal(typeof json?.access_token, 'string', text);
    const body = await echo(json.access_token);
    assert.equal(body.headers.user_id, USER_ID);
  });
  await context.close();
}

try {
  await main();
} catch (error) {
  failures += 1;
  console.log('FAIL the browser test could not run');
  console.log(indent(error?.stack ?? String(error)));
}
console.log(`${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
