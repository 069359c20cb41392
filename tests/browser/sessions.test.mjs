// Session routes in a real browser (issue 23, "Legacy web apps behind the gateway"): Debian's
// headless Chromium, driven by playwright-core, uses a legacy-style web app behind a route with
// auth = "session", as a person would.
//
// Started by run.sh, which runs the gateway with the route `legacy` (prefix /legacy, auth =
// "session", upstream LEGACY_ORIGIN), registers carol (id 200, group 7, "carol staple battery";
// this file's own user, since it revokes her tokens) and sets auth.refresh_interval to 250ms.
// This process serves, on 127.0.0.1:
//   - LEGACY_ORIGIN (http): the legacy app. It trusts the identity headers the gateway injects
//     (user_id, group_id), renders them (#user, #group), has a form that POSTs a note to
//     /legacy/note ("saved: NOTE" plus the user), sets a cookie of its own (legacy_theme), and
//     records every request it receives (method, path, headers, body), so the checks can say
//     what arrived and what never did;
//   - ATTACKER_ORIGIN (https, the gateway's throwaway dev certificate): a page of another
//     origin on the same site (same host, other port), whose form POSTs a note to the app
//     through the gateway. Same site, so Chromium sends the SameSite=Lax session cookie with it:
//     only the gateway's same-origin rule stands in the way, and that is what is checked;
//   - PLAIN_ATTACKER_ORIGIN (http): the same page over plain HTTP, cross-site for Chromium
//     (schemeful same-site), so the Lax cookie stays home and the POST has no session.
// Real servers rather than page.route: Playwright calls a route handler only for the first URL
// of a redirect chain, and the gateway's redirects are what is under test.
//
// The flow, in one browser context with JavaScript off (nothing here needs it):
//   navigate to /legacy/?tab=notes → 302 to /open/signin?rd=... → sign in → back on the page
//   asked for, which shows user 200 in group 7 → the cookie's attributes → reload → the app's
//   form POST → the cross-origin POSTs refused, nothing forwarded → logout (confirmation) →
//   the sign-in page again, also with the old cookie put back → sign in again →
//   `authgate user revoke-tokens carol` → within a bounded poll the sign-in page again.
// Plus what a non-browser client gets (401 JSON, no redirect), the gateway's cookies never
// reaching an upstream (the app's own cookie does), identity headers sent with the cookie
// (another user's refused, one's own replaced by the gateway's), and a link from another site arriving signed in (SameSite=Lax, a safe method).
//
// Each check prints PASS or FAIL; the last line is "N passed, N failed"; exit 1 on any failure.
// Screenshots: legacy-signin.png, legacy-app.png, legacy-cross-site.png in ARTIFACTS.
//
// Environment (set by run.sh): AUTHGATE_BASE, LEGACY_ORIGIN, ATTACKER_ORIGIN,
// PLAIN_ATTACKER_ORIGIN, TLS_CERT and TLS_KEY (for ATTACKER_ORIGIN), AUTHGATE_BIN and
// AUTHGATE_CONFIG (the CLI), ARTIFACTS, CHROMIUM, NODE_EXTRA_CA_CERTS.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const BASE = required('AUTHGATE_BASE');
const LEGACY_ORIGIN = required('LEGACY_ORIGIN');
const ATTACKER_ORIGIN = required('ATTACKER_ORIGIN');
const PLAIN_ATTACKER_ORIGIN = required('PLAIN_ATTACKER_ORIGIN');
const TLS_CERT = required('TLS_CERT');
const TLS_KEY = required('TLS_KEY');
const AUTHGATE_BIN = required('AUTHGATE_BIN');
const AUTHGATE_CONFIG = required('AUTHGATE_CONFIG');
const ARTIFACTS = required('ARTIFACTS');
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

const USER = 'carol';
const USER_ID = '200';
const GROUP_ID = '7';
const PASSWORD = 'carol staple battery';
const USERNAME_LABEL = 'Phone, e-mail or user name';
const SESSION_COOKIE = '__Host-authgate-session';
const SIGNIN_PATH = '/open/signin';
const LOGOUT_PATH = '/open/logout';
const APP_PATH = '/legacy/';
const NOTE_PATH = '/legacy/note';
/** The app's own cookie: not the gateway's, so it must pass through both ways. */
const APP_COOKIE = 'legacy_theme=dark';

// A run takes a few seconds; these only bound a hang.
const OVERALL_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 15_000;
// `revoke-tokens` reaches the gateway within auth.refresh_interval (250ms here); generous for a
// loaded machine, still short.
const REVOCATION_BOUND_MS = 5_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`sessions.test.mjs: ${name} is not set (run tests/browser/run.sh)`);
    process.exit(2);
  }
  return value;
}

// process.exit runs Playwright's exit hook, which kills the browser it launched.
setTimeout(() => {
  console.log(`FAIL overall timeout: the session test took more than ${OVERALL_TIMEOUT_MS / 1000} s`);
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

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Listens on the port of `origin` (127.0.0.1), resolving once it does. */
function listen(server, origin) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(new URL(origin).port), '127.0.0.1', resolve);
  });
}

function stop(server) {
  server.closeAllConnections();
  server.close();
}

// --- the legacy app: LEGACY_ORIGIN, behind the gateway's session route --------------------------

/** Every request the app received: { method, path, headers, body }. */
const appRequests = [];

function serveLegacyApp(request, response) {
  const record = { method: request.method, path: request.url, headers: request.headers, body: '' };
  appRequests.push(record);
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    record.body = Buffer.concat(chunks).toString('utf8');
    const path = new URL(request.url, LEGACY_ORIGIN).pathname;
    if (request.method === 'GET' && path === APP_PATH) {
      legacyPage(response, request.headers);
    } else if (request.method === 'POST' && path === NOTE_PATH) {
      const note = new URLSearchParams(record.body).get('note') ?? '';
      legacyPage(response, request.headers, `saved: ${note}`);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
    }
  });
}

/** The app's page, as an old server-rendered app would write it: it believes the headers. */
function legacyPage(response, headers, saved) {
  response.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    // The app's own cookie, which must pass the gateway both ways.
    'set-cookie': `${APP_COOKIE}; Path=/legacy; HttpOnly; SameSite=Lax`,
  });
  response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Legacy notes</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem}label,input,button{font:inherit}</style></head>
<body><h1>Legacy notes</h1>
<p>Signed in as user <strong id="user">${escapeHtml(headers.user_id ?? '')}</strong>
in group <strong id="group">${escapeHtml(headers.group_id ?? '')}</strong>.</p>
${saved === undefined ? '' : `<p id="saved">${escapeHtml(saved)}</p>`}
<form method="post" action="${NOTE_PATH}">
<label for="note">Note</label> <input id="note" name="note"> <button type="submit">Save</button>
</form>
<p><a href="${LOGOUT_PATH}">Sign out</a></p>
</body></html>`);
}

/** The app's requests since `from`, as "METHOD path" lines. */
function appLines(from) {
  return appRequests.slice(from).map((r) => `${r.method} ${r.path}`);
}

// --- the other origins: a page whose form POSTs a note to the app through the gateway -----------

function serveAttacker(note) {
  return (request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body><h1>Win a prize</h1>
<form method="post" action="${BASE}${NOTE_PATH}">
<input type="hidden" name="note" value="${escapeHtml(note)}">
<button type="submit">Claim</button>
</form>
<p><a href="${BASE}${APP_PATH}">Your notes</a></p></body></html>`);
  };
}

// --- the browser side ---------------------------------------------------------------------------

async function newContext(browser) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, // the gateway's and ATTACKER_ORIGIN's self-signed dev certificate
    javaScriptEnabled: false,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  return context;
}

function sessionCookie(context) {
  return context.cookies(`${BASE}/`).then((all) => all.find((c) => c.name === SESSION_COOKIE));
}

/** The page's URL is the gateway's sign-in page (whatever `rd` says). */
function onSignIn(page) {
  const url = new URL(page.url());
  return `${url.origin}${url.pathname}` === `${BASE}${SIGNIN_PATH}`;
}

function onApp(page) {
  const url = new URL(page.url());
  return `${url.origin}${url.pathname}` === `${BASE}${APP_PATH}`;
}

async function expectSignInForm(page, rd) {
  assert.ok(onSignIn(page), `on the sign-in page, at ${page.url()}`);
  assert.equal(new URL(page.url()).searchParams.get('rd'), rd, `rd in ${page.url()}`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel(USERNAME_LABEL).waitFor();
  await page.getByLabel('Password', { exact: true }).waitFor();
}

/** Types carol's credentials on the sign-in page; resolves with the login POST's answer once
 *  the browser is back on the app. */
async function signIn(page) {
  await page.getByLabel(USERNAME_LABEL).fill(USER);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'
      && r.url().startsWith(`${BASE}${SIGNIN_PATH}`)),
    page.waitForURL((url) => `${url.origin}${url.pathname}` === `${BASE}${APP_PATH}`),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return answer;
}

/** What the page shows as the signed-in user and group. */
async function shownIdentity(page) {
  return {
    user: (await page.locator('#user').innerText()).trim(),
    group: (await page.locator('#group').innerText()).trim(),
  };
}

/** Navigates to the app; asserts the gateway sent the browser to sign in, in one 302. */
async function expectSentToSignIn(page, target = APP_PATH) {
  const response = await page.goto(`${BASE}${target}`);
  assert.ok(onSignIn(page), `sent to sign in, at ${page.url()}`);
  const first = response.request().redirectedFrom();
  assert.equal(first?.url(), `${BASE}${target}`, 'the route redirected');
  assert.equal(first.redirectedFrom(), null, 'in one hop');
  const redirect = await first.response();
  assert.equal(redirect.status(), 302);
  const rd = new URLSearchParams({ rd: target });
  assert.equal(redirect.headers().location, `${SIGNIN_PATH}?${rd}`);
  await expectSignInForm(page, target);
}

/** Runs the authgate CLI against the gateway's config and store (run.sh's environment). */
async function authgate(...args) {
  const run = promisify(execFile);
  return run(AUTHGATE_BIN, [...args, '--config', AUTHGATE_CONFIG], {
    timeout: 60_000,
    env: process.env,
  });
}

// --- the checks ---------------------------------------------------------------------------------

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const tls = { cert: readFileSync(TLS_CERT), key: readFileSync(TLS_KEY) };
  const servers = [
    [http.createServer(serveLegacyApp), LEGACY_ORIGIN],
    [https.createServer(tls, serveAttacker('pwned over https')), ATTACKER_ORIGIN],
    [http.createServer(serveAttacker('pwned over http')), PLAIN_ATTACKER_ORIGIN],
  ];
  try {
    for (const [server, origin] of servers) await listen(server, origin);
    await withoutBrowser();
    const browser = await chromium.launch({
      executablePath: EXECUTABLE,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 30_000,
    });
    console.log(`browser: ${EXECUTABLE} ${browser.version()}; gateway: ${BASE}; app: ${LEGACY_ORIGIN}`);
    try {
      await sessionFlow(browser);
    } finally {
      await browser.close();
    }
  } finally {
    for (const [server] of servers) stop(server);
  }
}

/** What a client that is no browser navigating gets: 401 JSON, never a redirect. */
async function withoutBrowser() {
  await check('without a session, a non-navigation request gets 401 JSON (no redirect, nothing forwarded)', async () => {
    const from = appRequests.length;
    const response = await fetch(`${BASE}${APP_PATH}`, {
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const text = await response.text();
    assert.equal(response.status, 401, text);
    assert.equal(response.headers.get('location'), null);
    assert.match(response.headers.get('content-type') ?? '', /json/);
    assert.equal(JSON.parse(text).error, 'unauthorized', text);
    // The session challenge says where to sign in and which cookie it takes.
    assert.match(response.headers.get('www-authenticate') ?? '',
      new RegExp(`^Cookie .*form-action="${SIGNIN_PATH}".*cookie-name="${SESSION_COOKIE}"`));
    assert.deepEqual(appLines(from), [], 'nothing reached the app');
  });

  await check('a forged session cookie is no session: the browser-like GET is sent to sign in', async () => {
    const from = appRequests.length;
    const response = await fetch(`${BASE}${APP_PATH}`, {
      headers: { accept: 'text/html', cookie: `${SESSION_COOKIE}=${'A'.repeat(43)}` },
      redirect: 'manual',
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    await response.text();
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), `${SIGNIN_PATH}?rd=%2Flegacy%2F`);
    assert.deepEqual(appLines(from), [], 'nothing reached the app');
  });
}

async function sessionFlow(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  const target = `${APP_PATH}?tab=notes`;
  let session;

  await check('navigating to the session route without a session: 302 to the sign-in page with rd', async () => {
    const from = appRequests.length;
    await expectSentToSignIn(page, target);
    // The form carries the way back and the CSRF token; the page names the site.
    assert.equal(await page.locator('input[type=hidden][name=rd]').getAttribute('value'), target);
    assert.match(await page.locator('input[type=hidden][name=csrf_token]').getAttribute('value') ?? '',
      /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await page.locator('p.sub').innerText(), `to continue to ${new URL(BASE).host}`);
    assert.deepEqual(appLines(from), [], 'nothing reached the app');
    assert.equal(await sessionCookie(context), undefined, 'no session yet');
    await page.screenshot({ path: join(ARTIFACTS, 'legacy-signin.png'), fullPage: true });
  });

  await check('signing in: 303 back to the page asked for, which shows user 200 in group 7', async () => {
    const from = appRequests.length;
    const answer = await signIn(page);
    assert.equal(answer.status(), 303);
    assert.equal(answer.headers().location, target);
    // The Set-Cookie as sent: host-only (no Domain), the whole site, Secure, HttpOnly, Lax.
    const setCookie = (await answer.headerValue('set-cookie')) ?? '';
    assert.match(setCookie,
      new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; Path=/; Max-Age=\\d+; Secure; HttpOnly; SameSite=Lax$`, 'm'),
      setCookie);
    assert.equal(new URL(page.url()).search, '?tab=notes', 'the query came back too');
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    assert.deepEqual(appLines(from), [`GET ${target}`], 'one request reached the app');
    await page.screenshot({ path: join(ARTIFACTS, 'legacy-app.png'), fullPage: true });
  });

  await check('the session cookie: __Host-, host-only, Path=/, Secure, HttpOnly, SameSite=Lax', async () => {
    session = await sessionCookie(context);
    assert.ok(session, 'the session cookie is set');
    assert.match(session.value, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(session.domain, new URL(BASE).hostname, 'host-only (no leading dot)');
    assert.equal(session.path, '/');
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    // Max-Age is [login] session_ttl (30m in the shipped config).
    const left = session.expires - Date.now() / 1000;
    assert.ok(left > 25 * 60 && left <= 30 * 60 + 5, `expires in ${Math.round(left)} s`);
  });

  await check('the app never sees the session cookie; its own cookie reaches it', async () => {
    const from = appRequests.length;
    // The first page set legacy_theme; this request carries it and the session cookie.
    await page.goto(`${BASE}${APP_PATH}`);
    assert.ok(onApp(page), `on the app, at ${page.url()}`);
    const requests = appRequests.slice(from);
    assert.equal(requests.length, 1);
    const [{ headers }] = requests;
    assert.equal(headers.user_id, USER_ID);
    assert.equal(headers.group_id, GROUP_ID);
    assert.equal(headers.cookie, APP_COOKIE, 'only the app\'s own cookie');
    assert.ok(!JSON.stringify(appRequests).includes(session.value), 'the session value never reached the app');
    const cookies = appRequests.map((r) => r.headers.cookie ?? '');
    assert.deepEqual(cookies.filter((c) => /authgate/i.test(c)), [], 'no gateway cookie ever reached the app');
  });

  await check('identity headers sent with the cookie: another user\'s is refused (403), one\'s own is replaced', async () => {
    // The app believes user_id. Outside the browser (which cannot set these on a navigation):
    // naming another user in any spelling is a request to act as them, which only an admin's
    // session may make; naming oneself passes, and the app gets the gateway's headers alone.
    const from = appRequests.length;
    const get = (headers) => fetch(`${BASE}${APP_PATH}`, {
      headers: { accept: 'text/html', cookie: `${SESSION_COOKIE}=${session.value}`, ...headers },
      redirect: 'manual',
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const refused = await get({ 'X-User-Id': '1' });
    const text = await refused.text();
    assert.equal(refused.status, 403, text);
    assert.equal(JSON.parse(text).error, 'insufficient_scope', text);
    assert.deepEqual(appLines(from), [], 'nothing reached the app');

    const own = await get({ 'X-User-Id': USER_ID, 'Group-Id': GROUP_ID });
    await own.text();
    assert.equal(own.status, 200);
    const requests = appRequests.slice(from);
    assert.equal(requests.length, 1);
    const [{ headers }] = requests;
    assert.equal(headers.user_id, USER_ID);
    assert.equal(headers.group_id, GROUP_ID);
    assert.equal(headers['x-user-id'], undefined, 'the client\'s spelling is removed');
    assert.equal(headers['group-id'], undefined, 'the client\'s spelling is removed');
    assert.equal(headers.cookie, undefined, 'the session cookie was the only cookie: none is left');
  });

  await check('a reload keeps the session (no sign-in page on the way)', async () => {
    const from = appRequests.length;
    const response = await page.reload();
    assert.equal(response.status(), 200);
    assert.equal(response.request().redirectedFrom(), null, 'no redirect');
    assert.ok(onApp(page), `on the app, at ${page.url()}`);
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    assert.deepEqual(appLines(from), [`GET ${APP_PATH}`]);
  });

  await check('the app\'s form POST (same origin) is forwarded with the identity: "saved"', async () => {
    const from = appRequests.length;
    await page.getByLabel('Note').fill('milk & eggs');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${BASE}${NOTE_PATH}`),
      page.getByRole('button', { name: 'Save' }).click(),
    ]);
    assert.equal(response.status(), 200);
    await page.locator('#saved').waitFor();
    assert.equal(await page.locator('#saved').innerText(), 'saved: milk & eggs');
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    const requests = appRequests.slice(from);
    assert.deepEqual(requests.map((r) => `${r.method} ${r.path}`), [`POST ${NOTE_PATH}`]);
    const [post] = requests;
    assert.equal(post.body, 'note=milk+%26+eggs');
    assert.equal(post.headers.user_id, USER_ID);
    assert.equal(post.headers['sec-fetch-site'], 'same-origin', 'Chromium said where it came from');
    assert.equal(post.headers.cookie, APP_COOKIE);
  });

  await check('a POST from a page of another origin on the same site (https): 403 cross_site_request, nothing forwarded', async () => {
    const from = appRequests.length;
    await page.goto(`${ATTACKER_ORIGIN}/`);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${BASE}${NOTE_PATH}`),
      page.getByRole('button', { name: 'Claim' }).click(),
    ]);
    assert.equal(response.status(), 403);
    const sent = await response.request().allHeaders();
    // Same site: Chromium did send the Lax session cookie, so the refusal is the gateway's.
    assert.ok((sent.cookie ?? '').includes(`${SESSION_COOKIE}=${session.value}`),
      `the browser sent the session cookie: ${sent.cookie}`);
    assert.equal(sent['sec-fetch-site'], 'same-site');
    assert.equal(sent.origin, ATTACKER_ORIGIN);
    const body = JSON.parse(await response.text());
    assert.equal(body.error, 'cross_site_request', JSON.stringify(body));
    await page.screenshot({ path: join(ARTIFACTS, 'legacy-cross-site.png'), fullPage: true });
    assert.deepEqual(appLines(from), [], 'the app received nothing');
    assert.ok(!JSON.stringify(appRequests).includes('pwned'), 'no refused note ever reached the app');
  });

  await check('a POST from a plain-http page (cross-site): the cookie stays home, 401, nothing forwarded', async () => {
    const from = appRequests.length;
    await page.goto(`${PLAIN_ATTACKER_ORIGIN}/`);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${BASE}${NOTE_PATH}`),
      page.getByRole('button', { name: 'Claim' }).click(),
    ]);
    const sent = await response.request().allHeaders();
    assert.ok(!(sent.cookie ?? '').includes(SESSION_COOKIE), `no session cookie sent: ${sent.cookie}`);
    assert.equal(sent['sec-fetch-site'], 'cross-site');
    // A POST is no navigation the gateway may turn into a sign-in redirect.
    assert.equal(response.status(), 401);
    assert.deepEqual(appLines(from), [], 'the app received nothing');
    assert.ok(!JSON.stringify(appRequests).includes('pwned'), 'no refused note ever reached the app');
  });

  await check('a link from that cross-site page still arrives signed in (Lax, a GET navigation)', async () => {
    // The refusals ended nothing, and a safe navigation from another site is allowed.
    const from = appRequests.length;
    await page.goto(`${PLAIN_ATTACKER_ORIGIN}/`);
    await Promise.all([
      page.waitForURL((url) => `${url.origin}${url.pathname}` === `${BASE}${APP_PATH}`),
      page.getByRole('link', { name: 'Your notes' }).click(),
    ]);
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    const requests = appRequests.slice(from);
    assert.deepEqual(requests.map((r) => `${r.method} ${r.path}`), [`GET ${APP_PATH}`]);
    assert.equal(requests[0].headers['sec-fetch-site'], 'cross-site');
  });

  await check('logout: the app\'s link, the confirmation, "Signed out"; the cookie is cleared', async () => {
    await Promise.all([
      page.waitForURL((url) => url.pathname === LOGOUT_PATH),
      page.getByRole('link', { name: 'Sign out' }).click(),
    ]);
    await page.getByRole('heading', { name: 'Sign out' }).waitFor();
    assert.ok(await sessionCookie(context), 'nothing ended before the confirmation');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(`${BASE}${LOGOUT_PATH}`)),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    assert.equal(response.status(), 200);
    await page.getByRole('heading', { name: 'Signed out' }).waitFor();
    assert.equal(await sessionCookie(context), undefined, 'the session cookie is cleared');
  });

  await check('after logout, navigating to the app goes to the sign-in page, even with the old cookie put back', async () => {
    assert.ok(session, 'no session from the sign-in step');
    const from = appRequests.length;
    await expectSentToSignIn(page);
    // The session ended on the gateway, not only its cookie in this browser.
    await context.addCookies([session]);
    assert.equal((await sessionCookie(context))?.value, session.value, 'the old cookie is back');
    await expectSentToSignIn(page);
    assert.deepEqual(appLines(from), [], 'nothing reached the app');
  });

  let second;
  await check('signing in again: a new session (a new cookie value), the app shows the user', async () => {
    await signIn(page);
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    second = await sessionCookie(context);
    assert.ok(second, 'a session cookie');
    assert.notEqual(second.value, session.value, 'a new session');
  });

  await check('`authgate user revoke-tokens carol`: within a bounded poll the app sends the browser to sign in', async () => {
    assert.ok(second, 'not signed in');
    await authgate('user', 'revoke-tokens', USER);
    const started = Date.now();
    // The gateway notices within auth.refresh_interval; navigate until it has, bounded.
    for (;;) {
      await page.goto(`${BASE}${APP_PATH}`);
      if (onSignIn(page)) break;
      assert.ok(onApp(page), `on the app or the sign-in page, at ${page.url()}`);
      assert.ok(Date.now() - started < REVOCATION_BOUND_MS,
        `still signed in ${REVOCATION_BOUND_MS} ms after revoke-tokens`);
      await sleep(100);
    }
    console.log(`     (revocation seen after ${Date.now() - started} ms)`);
    await expectSignInForm(page, APP_PATH);
    // Ended on the gateway: the browser still holds the cookie, which no longer answers.
    assert.equal((await sessionCookie(context))?.value, second.value, 'the cookie is still there');
    await expectSentToSignIn(page);
  });

  await check('signing in right after the revocation works (even within the same second)', async () => {
    // Revocations are kept in whole seconds; a sign-in in the revocation's second must not be
    // dead on arrival (it starts in the next second).
    await authgate('user', 'revoke-tokens', USER);
    await signIn(page);
    assert.deepEqual(await shownIdentity(page), { user: USER_ID, group: GROUP_ID });
    await page.reload();
    assert.ok(onApp(page), `still on the app after a reload, at ${page.url()}`);
  });

  await context.close();
}

try {
  await main();
} catch (error) {
  failures += 1;
  console.log('FAIL the session test could not run');
  console.log(indent(error?.stack ?? String(error)));
}
console.log(`${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
