// The login page in a real browser: Debian's headless Chromium driven by playwright-core.
//
// Started by run.sh, which runs a gateway and registers alice (id 100, "correct horse battery"),
// the confidential client `web` ("Web Shop"; authorization_code, refresh_token, implicit;
// redirect URI CLIENT_ORIGIN/cb; scope read), the public client `spa` (PKCE; redirect URI
// CLIENT_ORIGIN/spa/cb) and the OpenID Connect client `oidc` (confidential, no scope list;
// redirect URI CLIENT_ORIGIN/oidc/cb, post-logout redirect URI CLIENT_ORIGIN/bye).
// CLIENT_ORIGIN (http://127.0.0.1:PORT) is served by this process for all three and records
// every request (method, URL, form body), so "nothing went to the client" and "the client
// received this POST" can be asserted.
// A real server rather than page.route: Playwright calls a route handler only for the first URL
// of a redirect chain, and the gateway's redirects are exactly what is under test.
//
// The main flows run with JavaScript disabled (the page must work without it); the phone and
// PKCE checks run with it enabled (the layout is measured by script, CSP violations are logged).
// OpenID Connect (client `oidc`, discovery read from /.well-known/openid-configuration):
//   - the code flow with scope=openid profile email and a nonce: the client gets code, state and
//     iss (RFC 9207); the code redeemed at the token endpoint (client_secret_basic) gives an ID
//     token whose claims are checked (iss, sub, aud, azp, nonce, auth_time, at_hash, amr, ...)
//     and whose RS256 signature is verified against the JWKS with node:crypto;
//   - silent sign-in: prompt=none with the session comes straight back with a code (no page is
//     ever shown); in a fresh context it comes back with error=login_required;
//   - response_mode=form_post: with JavaScript the page's one script (allowed by its CSP hash,
//     no violation logged) POSTs code, state and iss to the client; without it the "Continue"
//     button does (screenshot form-post-noscript.png);
//   - logout at /open/logout: with an id_token_hint at once (no page), without one after the
//     "Sign out" confirmation (screenshot logout-confirm.png); then to CLIENT_ORIGIN/bye with the
//     state, and prompt=none answers login_required.
//
// Each check prints PASS or FAIL; the last line is "N passed, N failed"; exit 1 on any failure.
//
// Environment: AUTHGATE_BASE (https://127.0.0.1:PORT), CLIENT_ORIGIN, ARTIFACTS (screenshot
// dir), CHROMIUM (default /usr/bin/chromium), NODE_EXTRA_CA_CERTS (the gateway's dev
// certificate, so this process's fetch verifies the gateway).

import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
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

const OIDC_CLIENT_ID = 'oidc';
const OIDC_CLIENT_SECRET = 'oidc-secret-0123456789abcdef';
const OIDC_REDIRECT_URI = `${CLIENT_ORIGIN}/oidc/cb`;
const POST_LOGOUT_URI = `${CLIENT_ORIGIN}/bye`;

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
/** Every request to the client, with its method and (form) body: { method, url, body }. */
const clientRequests = [];

function serveClient(request, response) {
  const url = new URL(request.url, CLIENT_ORIGIN);
  if (url.pathname === '/favicon.ico') {
    // The browser's own request, part of no flow.
    response.writeHead(404).end();
    return;
  }
  clientHits.push(url.href);
  const record = { method: request.method, url, contentType: request.headers['content-type'], body: '' };
  clientRequests.push(record);
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    record.body = Buffer.concat(chunks).toString('utf8');
    answerClient(url, response);
  });
}

function answerClient(url, response) {
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
  const fromRequest = clientRequests.length;
  const requests = () => clientRequests.slice(fromRequest);
  return { context, hits, requests };
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
  return context.cookies(`${BASE}/open/`).then((all) => all.find((c) => c.name === '__Host-authgate-session'));
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
      const discovery = await openidDiscovery();
      await openidCodeFlowAndSilentSignIn(browser, discovery);
      await formPost(browser, discovery);
      await logoutWithConfirmation(browser, discovery);
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
    assert.ok(session, 'the __Host-authgate-session cookie is set');
    // Site-wide and host-only (__Host-): session routes read it too. The gateway strips it
    // before forwarding (sessions.test.mjs checks what an upstream receives).
    assert.equal(session.path, '/');
    assert.equal(session.domain, new URL(BASE).hostname, 'host-only');
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    const proxied = (await context.cookies(`${BASE}/echo`)).map((c) => c.name);
    assert.deepEqual(proxied, ['__Host-authgate-session'], 'the CSRF cookie stays on the pages\' path');
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

// --- OpenID Connect (client `oidc`) -------------------------------------------------------------

function oidcAuthorizeUrl(params = {}) {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: OIDC_CLIENT_ID,
    redirect_uri: OIDC_REDIRECT_URI,
    scope: 'openid profile email',
    state: 'oidc1',
    ...params,
  });
  return `${BASE}/open/authorize/index?${query}`;
}

async function getJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  const text = await response.text();
  assert.equal(response.status, 200, `GET ${url}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** The discovery document; undefined (and a FAIL) when it is not served as expected. */
async function openidDiscovery() {
  let discovery;
  await check('OpenID discovery: the issuer is the gateway, with token, JWKS and end-session endpoints', async () => {
    const document = await getJson(`${BASE}/.well-known/openid-configuration`);
    assert.equal(document.issuer, BASE, 'the default issuer is https://<server.listen>');
    assert.equal(document.token_endpoint, `${BASE}/oauth2/token`);
    assert.equal(document.end_session_endpoint, `${BASE}/open/logout`);
    assert.ok(document.jwks_uri?.startsWith(`${BASE}/`), `jwks_uri ${document.jwks_uri}`);
    assert.ok(document.response_modes_supported?.includes('form_post'), JSON.stringify(document));
    assert.equal(document.authorization_response_iss_parameter_supported, true);
    discovery = document;
  });
  return discovery;
}

/** The code at the token endpoint, authenticated with client_secret_basic (RFC 6749 §2.3.1). */
async function redeemOidc(discovery, code) {
  assert.ok(discovery, 'no discovery document');
  assert.ok(code, 'no code');
  const basic = Buffer.from(
    `${encodeURIComponent(OIDC_CLIENT_ID)}:${encodeURIComponent(OIDC_CLIENT_SECRET)}`,
  ).toString('base64');
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: OIDC_REDIRECT_URI }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `redeeming the code: ${text}`);
  const tokens = JSON.parse(text);
  assert.equal(typeof tokens.access_token, 'string', text);
  assert.equal(typeof tokens.id_token, 'string', `an id_token: ${text}`);
  return tokens;
}

/**
 * The ID token's claims, after verifying its RS256 signature against the JWKS (node:crypto, no
 * JOSE library) and the claims every ID token of this client carries.
 */
async function verifyIdToken(discovery, idToken, { nonce, accessToken }) {
  const parts = idToken.split('.');
  assert.equal(parts.length, 3, `a JWS in compact form: ${idToken}`);
  const [headerPart, payloadPart, signaturePart] = parts;
  const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
  const claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  assert.equal(header.alg, 'RS256', `RS256 by default: ${JSON.stringify(header)}`);
  const { keys } = await getJson(discovery.jwks_uri);
  const candidates = keys.filter((k) => k.kty === 'RSA' && (header.kid === undefined || k.kid === header.kid));
  assert.equal(candidates.length, 1, `one RSA key for kid ${header.kid} in ${JSON.stringify(keys.map((k) => k.kid))}`);
  const key = createPublicKey({ key: candidates[0], format: 'jwk' });
  const signature = Buffer.from(signaturePart, 'base64url');
  assert.ok(verify('sha256', Buffer.from(`${headerPart}.${payloadPart}`), key, signature),
    'the signature verifies against the JWKS');
  // A tampered payload does not (the check above is not vacuous).
  const forged = Buffer.from(JSON.stringify({ ...claims, sub: '1' })).toString('base64url');
  assert.ok(!verify('sha256', Buffer.from(`${headerPart}.${forged}`), key, signature),
    'a tampered payload fails');

  const now = Math.floor(Date.now() / 1000);
  assert.equal(claims.iss, discovery.issuer);
  assert.equal(claims.sub, USER_ID);
  assert.equal(claims.aud, OIDC_CLIENT_ID);
  assert.equal(claims.azp, OIDC_CLIENT_ID);
  assert.equal(claims.nonce, nonce);
  assert.deepEqual(claims.amr, ['pwd']);
  assert.equal(typeof claims.gid, 'number', `gid is a number: ${JSON.stringify(claims)}`);
  assert.ok(Number.isInteger(claims.auth_time) && claims.auth_time <= now + 5 && claims.auth_time > now - 600,
    `auth_time ${claims.auth_time} (now ${now})`);
  assert.ok(claims.iat <= now + 5 && claims.exp > now, `iat ${claims.iat}, exp ${claims.exp}, now ${now}`);
  // at_hash: the left half of SHA-256 of the access token (Core §3.1.3.6).
  const atHash = createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url');
  assert.equal(claims.at_hash, atHash);
  return claims;
}

/** The OAuth parameters of a URL (query) or of a form body. */
function params(source) {
  return Object.fromEntries(new URLSearchParams(source));
}

/** Records the main frame's committed URLs: a page the person saw, not a redirect hop. */
function recordShownPages(page) {
  const shown = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) shown.push(frame.url());
  });
  return () => shown.filter((url) => url.startsWith(`${BASE}/`));
}

/** Goes to `url` expecting no page of the gateway on the way to the client's `target`. */
async function throughWithoutAPage(page, shownGatewayPages, url, target) {
  const before = shownGatewayPages().length;
  const response = await page.goto(url);
  const landed = new URL(page.url());
  assert.equal(`${landed.origin}${landed.pathname}`, target, `landed on ${landed}`);
  assert.deepEqual(shownGatewayPages().slice(before), [], 'the gateway showed no page');
  const first = response.request().redirectedFrom();
  assert.ok(first?.url().startsWith(`${BASE}/`), 'the gateway redirected');
  assert.equal(first.redirectedFrom(), null, 'in one hop');
  assert.equal((await first.response()).status(), 303);
  return landed;
}

/**
 * The session ended on the gateway, not only its cookie in this browser: with the old cookie put
 * back, prompt=none still answers login_required.
 */
async function expectSessionEnded(context, page, shownGatewayPages, oldSession, state) {
  assert.equal(await sessionCookie(context), undefined, 'the session cookie is cleared');
  await expectLoginRequired(page, shownGatewayPages, state);
  await context.addCookies([oldSession]);
  assert.equal((await sessionCookie(context))?.value, oldSession.value, 'the old cookie is back');
  await expectLoginRequired(page, shownGatewayPages, `${state}-replayed`);
}

async function expectLoginRequired(page, shownGatewayPages, state) {
  const landed = await throughWithoutAPage(page, shownGatewayPages,
    oidcAuthorizeUrl({ prompt: 'none', state }), OIDC_REDIRECT_URI);
  const back = params(landed.search);
  assert.equal(back.error, 'login_required', `${landed}`);
  assert.equal(back.state, state);
  assert.equal(back.iss, BASE, 'RFC 9207 iss on errors too');
  assert.equal(back.code, undefined, `no code: ${landed}`);
}

/** The code flow with an ID token; then, in the same browser, silent sign-in and logout by hint. */
async function openidCodeFlowAndSilentSignIn(browser, discovery) {
  const { context, hits } = await newContext(browser);
  const page = await context.newPage();
  const shownGatewayPages = recordShownPages(page);
  let firstClaims;
  let idToken;

  await check('OIDC code flow: sign in on the login page; the client gets code, state and iss', async () => {
    assert.ok(discovery, 'no discovery document');
    const nonce = randomBytes(16).toString('base64url');
    await page.goto(oidcAuthorizeUrl({ nonce, state: 'oidc1' }));
    await expectLoginForm(page);
    assert.equal(await page.locator('p.sub').innerText(), 'to continue to OIDC App');
    const url = await signIn(page, { redirectUri: OIDC_REDIRECT_URI });
    const back = params(url.search);
    assert.deepEqual(Object.keys(back).sort(), ['code', 'iss', 'state'], `${url}`);
    assert.equal(back.state, 'oidc1');
    assert.equal(back.iss, discovery.issuer, 'RFC 9207 iss');
    assert.deepEqual(hits(), [url.href], 'one request to the client');
    const tokens = await redeemOidc(discovery, back.code);
    firstClaims = await verifyIdToken(discovery, tokens.id_token, { nonce, accessToken: tokens.access_token });
    assert.equal(firstClaims.preferred_username, USER, 'profile scope');
    assert.equal(firstClaims.email, 'alice@example.com', 'email scope');
    assert.equal(typeof firstClaims.email_verified, 'boolean');
    assert.equal(firstClaims.phone_number, undefined, 'no phone scope asked');
    assert.equal(typeof tokens.refresh_token, 'string', 'the client has the refresh_token grant');
    idToken = tokens.id_token;
  });

  await check('silent sign-in: prompt=none with the session comes back with a code, no page shown', async () => {
    assert.ok(firstClaims, 'no sign-in from the previous step');
    assert.ok(await sessionCookie(context), 'the session cookie is set');
    const nonce = 'n-silent';
    const landed = await throughWithoutAPage(page, shownGatewayPages,
      oidcAuthorizeUrl({ prompt: 'none', nonce, state: 'silent1' }), OIDC_REDIRECT_URI);
    const back = params(landed.search);
    assert.equal(back.state, 'silent1');
    assert.equal(back.iss, BASE);
    assert.equal(back.error, undefined, `${landed}`);
    const tokens = await redeemOidc(discovery, back.code);
    const claims = await verifyIdToken(discovery, tokens.id_token, { nonce, accessToken: tokens.access_token });
    assert.equal(claims.auth_time, firstClaims.auth_time, 'the session keeps its sign-in time');
  });

  await check('logout with a valid id_token_hint: straight to the post-logout URI, session ended', async () => {
    assert.ok(idToken, 'no ID token from the code flow');
    const oldSession = await sessionCookie(context);
    assert.ok(oldSession, 'signed in');
    const query = new URLSearchParams({
      id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye0',
    });
    const landed = await throughWithoutAPage(page, shownGatewayPages,
      `${discovery.end_session_endpoint}?${query}`, POST_LOGOUT_URI);
    assert.equal(landed.search, '?state=bye0');
    await expectSessionEnded(context, page, shownGatewayPages, oldSession, 'after-bye0');
  });
  await context.close();

  const fresh = await newContext(browser);
  const freshPage = await fresh.context.newPage();
  const freshShown = recordShownPages(freshPage);
  await check('silent sign-in without a session: prompt=none answers error=login_required, no page', async () => {
    await expectLoginRequired(freshPage, freshShown, 'silent2');
    assert.equal(fresh.hits().length, 1);
  });
  await fresh.context.close();
}

/** The client's callback requests since `from`, as { method, query, form }. */
function callbacks(requests) {
  return requests()
    .filter((r) => `${r.url.origin}${r.url.pathname}` === OIDC_REDIRECT_URI)
    .map((r) => ({ method: r.method, query: r.url.search, contentType: r.contentType, form: params(r.body) }));
}

async function expectFormPostDelivery(discovery, requests, state, nonce) {
  const delivered = callbacks(requests);
  assert.equal(delivered.length, 1, `one request to the callback: ${JSON.stringify(delivered)}`);
  const [{ method, query, contentType, form }] = delivered;
  assert.equal(method, 'POST');
  assert.equal(query, '', 'nothing in the query');
  assert.match(contentType ?? '', /^application\/x-www-form-urlencoded/);
  assert.deepEqual(Object.keys(form).sort(), ['code', 'iss', 'state'], JSON.stringify(form));
  assert.equal(form.state, state);
  assert.equal(form.iss, BASE);
  const tokens = await redeemOidc(discovery, form.code);
  await verifyIdToken(discovery, tokens.id_token, { nonce, accessToken: tokens.access_token });
}

/** response_mode=form_post: the auto-submitting page, with JavaScript and without. */
async function formPost(browser, discovery) {
  {
    const { context, requests } = await newContext(browser, { javaScriptEnabled: true });
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    await check('form_post (JavaScript on): the page\'s script POSTs code, state and iss to the client', async () => {
      assert.ok(discovery, 'no discovery document');
      const nonce = 'n-form-post';
      await page.goto(oidcAuthorizeUrl({ response_mode: 'form_post', nonce, state: 'fp1' }));
      await expectLoginForm(page);
      const formPage = page.waitForResponse((r) => r.request().isNavigationRequest()
        && r.request().method() === 'POST' && r.url().startsWith(`${BASE}/`));
      await signIn(page, { redirectUri: OIDC_REDIRECT_URI });
      const response = await formPage;
      assert.equal(response.status(), 200, 'the form page, not a redirect');
      const csp = response.headers()['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+=*'/, csp);
      assert.doesNotMatch(csp, /unsafe-inline/, csp);
      assert.equal((await page.textContent('body')).trim(), 'client callback');
      await expectFormPostDelivery(discovery, requests, 'fp1', nonce);
      assert.deepEqual(consoleErrors, [], 'no console error (no CSP violation)');
    });
    await context.close();
  }
  {
    const { context, requests } = await newContext(browser);
    const page = await context.newPage();
    await check('form_post (JavaScript off): a "Continue" button posts the same to the client', async () => {
      assert.ok(discovery, 'no discovery document');
      const nonce = 'n-form-post-noscript';
      await page.goto(oidcAuthorizeUrl({ response_mode: 'form_post', nonce, state: 'fp2' }));
      await expectLoginForm(page);
      await page.getByLabel(USERNAME_LABEL).fill(USER);
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Sign in' }).click(),
      ]);
      assert.equal(response.status(), 200);
      onGateway(page);
      await page.getByRole('heading', { name: 'Signing you in' }).waitFor();
      const form = page.locator('form');
      assert.equal(await form.getAttribute('method'), 'post');
      assert.equal(await form.getAttribute('action'), OIDC_REDIRECT_URI);
      const button = page.getByRole('button', { name: 'Continue' });
      await button.waitFor();
      assert.ok(await button.isVisible(), 'the Continue button is visible');
      assert.deepEqual(callbacks(requests), [], 'nothing went to the client yet');
      await page.screenshot({ path: join(ARTIFACTS, 'form-post-noscript.png'), fullPage: true });
      await Promise.all([
        page.waitForURL((url) => `${url.origin}${url.pathname}` === OIDC_REDIRECT_URI),
        button.click(),
      ]);
      await expectFormPostDelivery(discovery, requests, 'fp2', nonce);
    });
    await context.close();
  }
}

/** RP-initiated logout without an id_token_hint: the person confirms on the gateway's page. */
async function logoutWithConfirmation(browser, discovery) {
  const { context, requests } = await newContext(browser);
  const page = await context.newPage();
  const shownGatewayPages = recordShownPages(page);
  let oldSession;
  await check('logout without a hint: a "Sign out" confirmation, then to the post-logout URI with the state', async () => {
    assert.ok(discovery, 'no discovery document');
    await page.goto(oidcAuthorizeUrl({ state: 'lo1', nonce: 'n-lo1' }));
    await expectLoginForm(page);
    await signIn(page, { redirectUri: OIDC_REDIRECT_URI });
    oldSession = await sessionCookie(context);
    assert.ok(oldSession, 'signed in');

    const query = new URLSearchParams({
      client_id: OIDC_CLIENT_ID, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye1',
    });
    const response = await page.goto(`${discovery.end_session_endpoint}?${query}`);
    assert.equal(response.status(), 200);
    onGateway(page);
    await page.getByRole('heading', { name: 'Sign out' }).waitFor();
    // The recorder behind "the gateway showed no page" does see a page the gateway shows.
    assert.ok(shownGatewayPages().some((url) => url.startsWith(discovery.end_session_endpoint)),
      `the confirmation page is recorded: ${shownGatewayPages()}`);
    const button = page.getByRole('button', { name: 'Sign out' });
    await button.waitFor();
    const hidden = {};
    for (const input of await page.locator('form input[type=hidden]').all()) {
      hidden[await input.getAttribute('name')] = await input.getAttribute('value');
    }
    assert.equal(hidden.client_id, OIDC_CLIENT_ID);
    assert.equal(hidden.post_logout_redirect_uri, POST_LOGOUT_URI);
    assert.equal(hidden.state, 'bye1');
    assert.match(hidden.csrf_token ?? '', /^[A-Za-z0-9_-]{43}$/, 'CSRF-protected');
    assert.ok(await sessionCookie(context), 'nothing ended before the confirmation');
    assert.deepEqual(requests().filter((r) => r.url.pathname === '/bye'), [], 'nothing went to /bye yet');
    await page.screenshot({ path: join(ARTIFACTS, 'logout-confirm.png'), fullPage: true });

    const [redirect] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(`${BASE}/`)),
      page.waitForURL((url) => `${url.origin}${url.pathname}` === POST_LOGOUT_URI),
      button.click(),
    ]);
    assert.equal(redirect.status(), 303);
    const landed = new URL(page.url());
    assert.equal(landed.search, '?state=bye1');
    const bye = requests().filter((r) => r.url.pathname === '/bye');
    assert.deepEqual(bye.map((r) => `${r.method} ${r.url.pathname}${r.url.search}`), ['GET /bye?state=bye1']);
  });
  await check('after the confirmed logout, prompt=none answers login_required (the session ended)', async () => {
    assert.ok(oldSession, 'no session from the previous step');
    await expectSessionEnded(context, page, shownGatewayPages, oldSession, 'after-bye1');
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
