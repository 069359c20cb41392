// Signing in at upstream OpenID Connect providers from authgate's login page (issue 25), in a
// real browser (Debian's headless Chromium driven by playwright-core) against real providers.
//
// Started by run.sh, which runs:
//   - oidc-provider (provider.mjs) at OIDP_ISSUER (plain http), named `oidp` ("Test OP") in the
//     first gateway: required_claim groups ∋ staff, provision, link_by_email, group_claim gid,
//     admin_claim groups ∋ authgate-admins, max_session 10m, timeout 2s;
//     its accounts: carol (new here: provisioned, gid 7), dave (verified dave@corp.example: the
//     local dave, id 300, group 5 -> 8), mallory (alice@example.com NOT verified,
//     preferred_username alice), eve (groups []), dora (verified dora@corp.example: the local
//     dora, id 400, disabled), boss (verified root@corp.example, preferred_username root: the
//     local admin root, id 500, is never linked);
//   - a second authgate at AUTHGATE2_BASE, named `authgate2` ("Authgate Two"): allowed_domains
//     example.org, provision, group_claim gid; its user frank (frank@example.org verified,
//     group 9, password "frank staple battery");
//   - the first gateway at AUTHGATE_BASE: alice (id 100, group 7, alice@example.com, password
//     "correct horse battery"), dave, dora (disabled), root (admin), the confidential client
//     `web` (code and implicit; redirect URI CLIENT_ORIGIN/cb, scope read), the shipped /echo route (builtin:echo,
//     bearer tokens) and /web route (builtin:echo, auth = "session").
// CLIENT_ORIGIN is served here and records every request, so "the client got a code" and
// "nothing reached the client" can be asserted.
// provider.mjs's test hooks (POST OIDP_ISSUER/__test/...) drop the token endpoint or change one
// real answer (the authorization response's iss, the ID token) for the refusal checks.
//
// Each check prints PASS or FAIL; the last line is "N passed, N failed"; exit 1 on any failure.
//
// Environment: AUTHGATE_BASE, AUTHGATE2_BASE, OIDP_ISSUER, OIDP_PID (killed by the last check),
// CLIENT_ORIGIN, CLIENT_ID, CLIENT_SECRET, AUTHGATE_BIN and AUTHGATE_CONFIG (the CLI of the
// first gateway, with the environment it runs with), GATEWAY_LOG, ARTIFACTS, CHROMIUM,
// NODE_EXTRA_CA_CERTS (both gateways' dev certificates).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const BASE = required('AUTHGATE_BASE');
const BASE2 = required('AUTHGATE2_BASE');
const OIDP = required('OIDP_ISSUER');
const OIDP_PID = Number(required('OIDP_PID'));
const CLIENT_ORIGIN = required('CLIENT_ORIGIN');
const CLIENT_ID = required('CLIENT_ID');
const CLIENT_SECRET = required('CLIENT_SECRET');
const AUTHGATE_BIN = required('AUTHGATE_BIN');
const AUTHGATE_CONFIG = required('AUTHGATE_CONFIG');
const GATEWAY_LOG = process.env.GATEWAY_LOG;
const ARTIFACTS = required('ARTIFACTS');
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';

const REDIRECT_URI = `${CLIENT_ORIGIN}/cb`;
const USERNAME_LABEL = 'Phone, e-mail or user name';
const OIDP_LABEL = 'Test OP';
const GW2_LABEL = 'Authgate Two';

const OVERALL_TIMEOUT_MS = 240_000;
const STEP_TIMEOUT_MS = 15_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`providers.test.mjs: ${name} is not set (run tests/providers_e2e/run.sh)`);
    process.exit(2);
  }
  return value;
}

setTimeout(() => {
  console.log(`FAIL overall timeout: the test took more than ${OVERALL_TIMEOUT_MS / 1000} s`);
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

const run = promisify(execFile);
/** The first gateway's CLI (same config and environment as the running gateway). */
async function authgate(...args) {
  const { stdout } = await run(AUTHGATE_BIN, [...args, '--config', AUTHGATE_CONFIG], { timeout: 30_000 });
  return stdout;
}

/** `authgate user show` as an object: { id, account, group_id, email, state, password, ... }. */
async function showUser(account) {
  const out = await authgate('user', 'show', account);
  return Object.fromEntries(out.trim().split('\n').map((line) => {
    const at = line.indexOf(':');
    return [line.slice(0, at).trim(), line.slice(at + 1).trim()];
  }));
}

function authorizeUrl(state) {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    state,
    scope: 'read',
  });
  return `${BASE}/open/authorize/index?${query}`;
}

async function exchange(code) {
  const response = await fetch(`${BASE}/oauth2/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `token endpoint: ${response.status} ${text}`);
  return JSON.parse(text);
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

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true }).catch(() => {});
}

/** The first gateway's log (JSON lines) from character `from` on (see logSize). */
function logSince(from) {
  if (!GATEWAY_LOG) return '';
  try {
    return readFileSync(GATEWAY_LOG, 'utf8').slice(from);
  } catch {
    return '';
  }
}
/** How long the first gateway's log is now: a mark for logSince. */
function logSize() {
  return logSince(0).length;
}

// --- the client's side: CLIENT_ORIGIN, served here ----------------------------------------------

const clientHits = [];

function serveClient(request, response) {
  const url = new URL(request.url, CLIENT_ORIGIN);
  if (url.pathname === '/favicon.ico') {
    response.writeHead(404).end();
    return;
  }
  clientHits.push(url);
  request.resume();
  response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  response.end('client callback');
}

/** A fresh browser (context + page), every response recorded: { page, responses, hits() }. */
async function fresh(browser) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, // both gateways' self-signed dev certificates
    viewport: { width: 1100, height: 800 },
    locale: 'en-US',
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const responses = [];
  page.on('response', (r) => responses.push({ url: new URL(r.url()), status: r.status(), headers: r.headers() }));
  const from = clientHits.length;
  return { context, page, responses, hits: () => clientHits.slice(from) };
}

/** The recorded responses of the gateway's provider URLs (start, callback) for `name`. */
function providerResponses(responses, name, step) {
  return responses.filter((r) => r.url.origin === BASE && r.url.pathname === `/open/providers/${name}/${step}`);
}

/** The page comes to rest on the client (success) or on a gateway page (a refusal). */
function settled(page) {
  return page.waitForURL((url) => url.origin === CLIENT_ORIGIN || url.origin === BASE, { waitUntil: 'load' });
}

/** On the gateway's login page (a fresh context), clicks the button of `label`. */
async function clickProvider(page, state, label) {
  await page.goto(authorizeUrl(state));
  const button = page.getByRole('link', { name: `Sign in with ${label}` });
  await button.click();
}

/** At oidc-provider's development login form: any login name (and password) signs in. */
async function signInAtOidp(page, login) {
  await page.waitForURL((url) => url.origin === OIDP);
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any password');
  await Promise.all([settled(page), page.locator('button[type=submit]').click()]);
}

/** The whole sign-in at oidc-provider from the gateway's login page; ends on the client or a refusal. */
async function viaOidp(browser, login, state) {
  const session = await fresh(browser);
  await clickProvider(session.page, state, OIDP_LABEL);
  await signInAtOidp(session.page, login);
  return session;
}

/** The client got a code for `state` in this session (and nothing else); the code's tokens. */
async function codeAtClient(session, state) {
  const url = new URL(session.page.url());
  assert.equal(`${url.origin}${url.pathname}`, REDIRECT_URI, `expected the client's redirect URI, at ${url}`);
  assert.equal(url.searchParams.get('state'), state);
  assert.equal(url.searchParams.get('error'), null, `error at the client: ${url}`);
  const code = url.searchParams.get('code');
  assert.ok(code, `no code at the client: ${url}`);
  assert.equal(session.hits().length, 1, `the client got ${session.hits().map(String)}`);
  return exchange(code);
}

function sessionCookie(context) {
  return context.cookies(`${BASE}/open/`).then((all) => all.find((c) => c.name === '__Host-authgate-session'));
}

/** A refusal page of the callback: its status, no code at the client, no session cookie. */
async function refused(session, name, status, words) {
  const { page } = session;
  const url = new URL(page.url());
  assert.equal(url.origin, BASE, `expected a gateway page, at ${url}`);
  assert.equal(url.pathname, `/open/providers/${name}/callback`, `expected the callback's page, at ${url}`);
  const answers = providerResponses(session.responses, name, 'callback');
  assert.equal(answers.at(-1)?.status, status, `the callback answered ${answers.map((r) => r.status)}`);
  assert.match(answers.at(-1).headers['content-type'] ?? '', /^text\/html/, 'a refusal is an HTML page');
  const text = await page.locator('body').innerText();
  for (const word of words) assert.ok(text.includes(word), `the page says ${JSON.stringify(text)}, not ${JSON.stringify(word)}`);
  assert.deepEqual(session.hits().map(String), [], 'nothing reached the client');
  assert.equal(await sessionCookie(session.context), undefined, 'no session cookie');
}

/** `authgate user links ACCOUNT --json` (one JSON object a line) parsed, and the plain table. */
async function links(account) {
  const plain = await authgate('user', 'links', account);
  const json = await authgate('user', 'links', account, '--json');
  const list = json.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
  return { plain, list };
}

// --- the checks ---------------------------------------------------------------------------------

async function loginPage(browser) {
  const { context, page, responses } = await fresh(browser);
  const state = 'page-1';
  await check('the login page shows both provider buttons beside the password form', async () => {
    await page.goto(authorizeUrl(state));
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel(USERNAME_LABEL).waitFor();
    await page.getByLabel('Password', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    const buttons = page.locator('a.provider');
    assert.equal(await buttons.count(), 2);
    const pageTarget = new URL(authorizeUrl(state));
    for (const [name, label] of [['oidp', OIDP_LABEL], ['authgate2', GW2_LABEL]]) {
      const link = page.getByRole('link', { name: `Sign in with ${label}` });
      assert.equal(await link.getAttribute('class'), 'provider');
      const href = new URL(await link.getAttribute('href'), BASE);
      assert.equal(href.origin, BASE);
      assert.equal(href.pathname, `/open/providers/${name}/start`);
      const returnTo = new URL(href.searchParams.get('return_to'), BASE);
      assert.equal(returnTo.pathname, pageTarget.pathname, `return_to ${returnTo}`);
      assert.deepEqual([...returnTo.searchParams].sort(), [...pageTarget.searchParams].sort());
    }
    await shot(page, 'login-providers.png');
  });

  await check('start: 303 to the provider with code, PKCE S256, state, nonce; the pending cookie (reused)', async () => {
    await page.getByRole('link', { name: `Sign in with ${OIDP_LABEL}` }).click();
    await page.waitForURL((url) => url.origin === OIDP);
    const start = providerResponses(responses, 'oidp', 'start');
    assert.equal(start.length, 1);
    assert.equal(start[0].status, 303);
    const to = new URL(start[0].headers.location);
    assert.equal(`${to.origin}${to.pathname}`, `${OIDP}/auth`);
    const q = to.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), 'authgate');
    assert.equal(q.get('redirect_uri'), `${BASE}/open/providers/oidp/callback`);
    assert.ok(q.get('scope').split(' ').includes('openid'), q.get('scope'));
    assert.ok(q.get('state')?.length >= 16, 'state');
    assert.ok(q.get('nonce')?.length >= 16, 'nonce');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(q.get('code_challenge_method'), 'S256');
    const cookie = (await context.cookies(BASE)).find((c) => c.name === '__Host-authgate-pending');
    assert.ok(cookie, 'the __Host-authgate-pending cookie');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.secure, true);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.ok(cookie.expires > 0 && cookie.expires <= Date.now() / 1000 + 600 + 5, `Max-Age 600: expires ${cookie.expires}`);
    await shot(page, 'oidp-login.png');
    // A second start in the same browser reuses the cookie.
    await page.goto(authorizeUrl(state));
    await page.getByRole('link', { name: `Sign in with ${OIDP_LABEL}` }).click();
    await page.waitForURL((url) => url.origin === OIDP);
    const again = (await context.cookies(BASE)).find((c) => c.name === '__Host-authgate-pending');
    assert.equal(again?.value, cookie.value, 'the pending cookie is reused');
  });
  await context.close();
}

let carolCallback;
async function provisioned(browser) {
  const state = 'carol-1';
  const session = await viaOidp(browser, 'carol', state);
  carolCallback = providerResponses(session.responses, 'oidp', 'callback')[0]?.url;
  let tokens;
  await check('carol (new here) signs in at oidc-provider and lands on the client with a code', async () => {
    const callback = providerResponses(session.responses, 'oidp', 'callback');
    assert.equal(callback[0]?.status, 303, `callback: ${callback.map((r) => r.status)}`);
    assert.equal(callback[0].url.searchParams.get('iss'), OIDP, 'the RFC 9207 iss parameter reached the gateway');
    tokens = await codeAtClient(session, state);
    const cookie = await sessionCookie(session.context);
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.path, '/');
    assert.equal(cookie.secure, true);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
  });
  await check('carol signs in only through oidc-provider: her token and session end within max_session (10m)', async () => {
    assert.ok(tokens.expires_in <= 600, `expires_in ${tokens.expires_in}`);
    const cookie = await sessionCookie(session.context);
    if (cookie.expires > 0) {
      assert.ok(cookie.expires <= Date.now() / 1000 + 600 + 5, `the session cookie expires at ${cookie.expires}`);
    }
    await shot(session.page, 'carol-client.png');
  });
  await check('carol was provisioned: /echo sees her new user with group 7 (gid)', async () => {
    const user = await showUser('carol');
    assert.equal(user.group_id, '7');
    assert.equal(user.email, 'carol@example.com');
    assert.equal(user.password, 'none');
    const body = await echo(tokens.access_token);
    assert.equal(body.headers.user_id, user.id, JSON.stringify(body.headers));
    assert.equal(body.headers.group_id, '7');
  });
  await check('`authgate user links carol` lists the link (oidp, issuer, carol-sub)', async () => {
    const { plain, list } = await links('carol');
    assert.ok(plain.includes('oidp') && plain.includes(OIDP) && plain.includes('carol-sub'), plain);
    assert.equal(list.length, 1, JSON.stringify(list));
    assert.equal(list[0].provider, 'oidp');
    assert.equal(list[0].issuer, OIDP);
    assert.equal(list[0].subject, 'carol-sub');
    assert.equal(String(list[0].user_id), (await showUser('carol')).id);
  });
  await check('a used callback URL cannot be replayed (400, expired or already used)', async () => {
    assert.ok(carolCallback, 'the callback URL was seen');
    const response = await session.page.goto(carolCallback.href);
    assert.equal(response.status(), 400);
    const text = await session.page.locator('body').innerText();
    assert.ok(text.includes('This sign-in has expired or was already used'), text);
    assert.equal(session.hits().length, 1, 'nothing more reached the client');
    await shot(session.page, 'replay.png');
  });
  await check('carol again: the same user (the link), not a second one', async () => {
    const again = await viaOidp(browser, 'carol', 'carol-2');
    const second = await codeAtClient(again, 'carol-2');
    const body = await echo(second.access_token);
    assert.equal(body.headers.user_id, (await showUser('carol')).id);
    await again.context.close();
  });
  await session.context.close();
}

async function secondGateway(browser) {
  const state = 'frank-1';
  const session = await fresh(browser);
  const { page } = session;
  await check('frank signs in at the second authgate (https, ca_file) and gets group 9', async () => {
    await clickProvider(page, state, GW2_LABEL);
    await page.waitForURL((url) => url.origin === BASE2);
    await page.getByLabel(USERNAME_LABEL).fill('frank');
    await page.getByLabel('Password', { exact: true }).fill('frank staple battery');
    await shot(page, 'authgate2-login.png');
    await Promise.all([settled(page), page.getByRole('button', { name: 'Sign in' }).click()]);
    const callback = providerResponses(session.responses, 'authgate2', 'callback');
    assert.equal(callback[0]?.status, 303, `callback: ${callback.map((r) => r.status)}`);
    const tokens = await codeAtClient(session, state);
    const user = await showUser('frank');
    assert.equal(user.group_id, '9');
    const body = await echo(tokens.access_token);
    assert.equal(body.headers.user_id, user.id, JSON.stringify(body.headers));
    assert.equal(body.headers.group_id, '9');
    const { list } = await links('frank');
    assert.equal(list.length, 1, JSON.stringify(list));
    assert.equal(list[0].provider, 'authgate2');
    assert.equal(list[0].issuer, BASE2);
    assert.equal(list[0].subject, '900', 'authgate2 names frank by his id there');
  });
  await session.context.close();
}

async function linkedByEmail(browser) {
  await check('dave is linked to the local dave by his verified e-mail (user 300; group re-mapped to 8)', async () => {
    assert.equal((await links('dave')).list.length, 0, 'no link before');
    const session = await viaOidp(browser, 'dave', 'dave-1');
    const tokens = await codeAtClient(session, 'dave-1');
    assert.equal(tokens.expires_in, 3600, 'dave has a password: not capped by max_session');
    const body = await echo(tokens.access_token);
    assert.equal(body.headers.user_id, '300', JSON.stringify(body.headers));
    assert.equal(body.headers.group_id, '8');
    const { list } = await links('dave');
    assert.equal(list.length, 1, JSON.stringify(list));
    assert.equal(list[0].provider, 'oidp');
    assert.equal(list[0].subject, 'dave-sub');
    assert.equal(String(list[0].user_id), '300');
    const user = await showUser('dave');
    assert.equal(user.id, '300');
    assert.equal(user.group_id, '8');
    await session.context.close();
  });
}

/** `authgate audit --json` records of one action, e.g. provider.link. */
async function audit(kind) {
  const out = await authgate('audit', '--kind', kind, '--json');
  return out.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
}

async function auditAndUnlink(browser) {
  await check('audit: provider.provision (carol, frank), provider.link (dave), provider.remap (dave 5 -> 8)', async () => {
    const dump = (records) => records.map((r) => JSON.stringify(r)).join('\n');
    const provisions = await audit('provider.provision');
    const carol = provisions.find((r) => r.details?.subject === 'carol-sub');
    assert.ok(carol, dump(provisions));
    assert.equal(carol.actor, 'provider:oidp');
    assert.equal(carol.subject, `user:${(await showUser('carol')).id}`);
    assert.equal(carol.details.issuer, OIDP);
    const frank = provisions.find((r) => r.details?.subject === '900');
    assert.ok(frank, dump(provisions));
    assert.equal(frank.actor, 'provider:authgate2');
    assert.equal(frank.subject, `user:${(await showUser('frank')).id}`);
    const linked = await audit('provider.link');
    assert.deepEqual(linked.map((r) => [r.subject, r.details?.subject]), [['user:300', 'dave-sub']], dump(linked));
    const remaps = await audit('provider.remap');
    const dave = remaps.find((r) => r.subject === 'user:300');
    assert.ok(dave, dump(remaps));
    assert.deepEqual(dave.details?.group_id, [5, 8]);
  });
  await check('`authgate user unlink dave --provider oidp`: the link is gone (audited); his next sign-in links him again by e-mail', async () => {
    await authgate('user', 'unlink', 'dave', '--provider', 'oidp');
    assert.equal((await links('dave')).list.length, 0, 'no link after unlink');
    const unlinks = await audit('provider.unlink');
    assert.deepEqual(unlinks.map((r) => r.subject), ['user:300'], JSON.stringify(unlinks));
    const session = await viaOidp(browser, 'dave', 'dave-2');
    const tokens = await codeAtClient(session, 'dave-2');
    assert.equal((await echo(tokens.access_token)).headers.user_id, '300');
    assert.equal((await links('dave')).list.length, 1, 'linked again');
    assert.equal((await audit('provider.link')).length, 2);
    await session.context.close();
  });
}

async function refusals(browser) {
  await check('mallory (alice\'s e-mail, NOT verified) is not linked to alice: refused, no code', async () => {
    const session = await viaOidp(browser, 'mallory', 'mallory-1');
    await shot(session.page, 'refused-mallory.png');
    await refused(session, 'oidp', 403, ['No account here is linked']);
    assert.equal((await links('alice')).list.length, 0, 'alice has no link');
    await session.context.close();
  });
  await check('eve (groups [], not staff) is refused: 403 not allowed', async () => {
    const session = await viaOidp(browser, 'eve', 'eve-1');
    await shot(session.page, 'refused-eve.png');
    await refused(session, 'oidp', 403, ['is not allowed to sign in here']);
    await assert.rejects(showUser('eve'), 'eve was not provisioned');
    await session.context.close();
  });
  await check('boss (verified e-mail of the local admin root) is never linked to an admin: refused', async () => {
    const session = await viaOidp(browser, 'boss', 'boss-1');
    await shot(session.page, 'refused-admin.png');
    await refused(session, 'oidp', 403, ['No account here is linked']);
    assert.equal((await links('root')).list.length, 0, 'root has no link');
    await session.context.close();
  });
  await check('dora (verified e-mail of a disabled local user) is refused: 403 disabled', async () => {
    const session = await viaOidp(browser, 'dora', 'dora-1');
    await shot(session.page, 'refused-dora.png');
    await refused(session, 'oidp', 403, ['This account is disabled']);
    assert.equal((await links('dora')).list.length, 0, 'a disabled user is not linked either');
    await session.context.close();
  });
}

async function tampered(browser) {
  const tamper = async (what) => {
    const answer = await fetch(`${OIDP}/__test/tamper?what=${what}`, { method: 'POST' });
    assert.equal(answer.status, 204);
  };
  const cases = [
    ['callback-iss', 'the authorization response\'s iss (RFC 9207) names another issuer'],
    ['sig', 'the ID token\'s signature does not verify'],
    ['none', 'the ID token is alg none'],
    ['hs256', 'the ID token is HS256 with the client secret (alg confusion)'],
    ['kid', 'the ID token is signed by a key the provider never published'],
    ['aud', 'the ID token is for another client (aud)'],
    ['azp', 'the ID token was issued to another client (azp, two audiences)'],
    ['nonce', 'the ID token\'s nonce is not ours'],
    ['iss', 'the ID token\'s iss is another issuer'],
    ['exp', 'the ID token has expired'],
  ];
  for (const [what, words] of cases) {
    await check(`refused when ${words}: 400 "Sign-in with ${OIDP_LABEL} failed", no code, no session`, async () => {
      await tamper(what);
      try {
        const session = await viaOidp(browser, 'carol', `tamper-${what}`);
        if (what === 'sig') await shot(session.page, 'id-token-bad-signature.png');
        const seen = providerResponses(session.responses, 'oidp', 'callback');
        if (what === 'callback-iss') {
          assert.equal(seen.at(-1)?.url.searchParams.get('iss'), 'http://127.0.0.1:1', 'the iss was changed');
        }
        await refused(session, 'oidp', 400, [`Sign-in with ${OIDP_LABEL} failed`]);
        await session.context.close();
      } finally {
        await tamper('');
      }
    });
  }
  await check('refused when the authorization response has no iss while the provider advertises it (RFC 9207 §2.4): 400', async () => {
    await tamper('callback-no-iss');
    try {
      const session = await viaOidp(browser, 'carol', 'no-iss');
      const seen = providerResponses(session.responses, 'oidp', 'callback');
      assert.equal(seen[0]?.url.searchParams.get('iss'), null, 'the iss was removed');
      await refused(session, 'oidp', 400, [`Sign-in with ${OIDP_LABEL} failed`]);
      await session.context.close();
    } finally {
      await tamper('');
    }
  });
}

async function boundToBrowser(browser) {
  await check('a sign-in started in one browser cannot be finished in another (pending cookie): 400; the first browser still can', async () => {
    // The victim's browser starts (and gets the pending cookie); the attacker's browser signs in
    // at the provider with that very authorization request and arrives with a good code and
    // state but without the cookie.
    const victim = await fresh(browser);
    await clickProvider(victim.page, 'bound-1', OIDP_LABEL);
    await victim.page.waitForURL((url) => url.origin === OIDP);
    const authorization = providerResponses(victim.responses, 'oidp', 'start')[0].headers.location;
    const attacker = await fresh(browser);
    await attacker.page.goto(authorization);
    await signInAtOidp(attacker.page, 'carol');
    await shot(attacker.page, 'other-browser.png');
    await refused(attacker, 'oidp', 400, ['This sign-in has expired or was already used']);
    await attacker.context.close();
    // The attacker's attempt did not use up the victim's sign-in: the victim finishes it.
    await signInAtOidp(victim.page, 'dave');
    const tokens = await codeAtClient(victim, 'bound-1');
    assert.equal((await echo(tokens.access_token)).headers.user_id, '300');
    await victim.context.close();
  });
}

async function startChecks(browser) {
  const start = (name, returnTo) => fetch(
    `${BASE}/open/providers/${name}/start?return_to=${encodeURIComponent(returnTo)}`,
    { redirect: 'manual', signal: AbortSignal.timeout(STEP_TIMEOUT_MS) },
  );
  await check('start refuses a return_to that is not one of the login pages on this host (no open redirect)', async () => {
    const page = new URL(authorizeUrl('rt-1'));
    for (const returnTo of [
      `https://evil.example${page.pathname}${page.search}`,
      `//evil.example${page.pathname}${page.search}`,
      '/echo',
      '/oauth2/token',
    ]) {
      const answer = await start('oidp', returnTo);
      assert.ok(answer.status >= 400 && answer.status < 500, `return_to ${returnTo}: ${answer.status} ${answer.headers.get('location')}`);
      assert.equal(answer.headers.get('location'), null, `return_to ${returnTo}`);
      assert.ok(!(answer.headers.get('set-cookie') ?? '').includes('__Host-authgate-pending'), 'no pending cookie');
    }
    const good = await start('oidp', `${page.pathname}${page.search}`);
    assert.equal(good.status, 303, 'the login page itself is a good return_to');
    assert.ok(good.headers.get('location').startsWith(`${OIDP}/auth?`));
  });
  await check('an unknown provider name: 404', async () => {
    const page = new URL(authorizeUrl('rt-2'));
    const answer = await start('nope', `${page.pathname}${page.search}`);
    assert.equal(answer.status, 404);
  });
  await check('a state issued for oidp is refused at authgate2\'s callback (400)', async () => {
    const session = await fresh(browser);
    await clickProvider(session.page, 'cross-1', OIDP_LABEL);
    await session.page.waitForURL((url) => url.origin === OIDP);
    const authorization = new URL(providerResponses(session.responses, 'oidp', 'start')[0].headers.location);
    const state = authorization.searchParams.get('state');
    const response = await session.page.goto(`${BASE}/open/providers/authgate2/callback?${new URLSearchParams({ code: 'x', state, iss: BASE2 })}`);
    assert.equal(response.status(), 400);
    const text = await session.page.locator('body').innerText();
    assert.ok(text.includes('This sign-in has expired or was already used'), text);
    assert.equal(await sessionCookie(session.context), undefined);
    await session.context.close();
  });
  await check('prompt=login on the login page: after the provider, back without it, and the code is issued at once', async () => {
    const session = await fresh(browser);
    const { page } = session;
    await page.goto(`${authorizeUrl('prompt-1')}&prompt=login`);
    await page.getByRole('link', { name: `Sign in with ${OIDP_LABEL}` }).click();
    await signInAtOidp(page, 'carol');
    const callback = providerResponses(session.responses, 'oidp', 'callback')[0];
    assert.equal(callback?.status, 303);
    const back = new URL(callback.headers.location, BASE);
    assert.equal(back.pathname, '/open/authorize/index');
    assert.equal(back.searchParams.get('prompt'), null, `back to ${back}`);
    assert.equal(back.searchParams.get('state'), 'prompt-1');
    const tokens = await codeAtClient(session, 'prompt-1');
    const body = await echo(tokens.access_token);
    assert.equal(body.headers.user_id, (await showUser('carol')).id);
    await session.context.close();
  });
}

async function adminMapping(browser) {
  const claims = async (login, values) => {
    const answer = await fetch(`${OIDP}/__test/claims?login=${login}`, { method: 'POST', body: JSON.stringify(values) });
    assert.equal(answer.status, 204);
  };
  await check('provisioning keeps an unverified e-mail out, and a missing group claim gives default_group (0)', async () => {
    await claims('hank', { sub: 'hank-sub', email: 'hank@example.com', email_verified: false, groups: ['staff'] });
    const session = await viaOidp(browser, 'hank', 'hank-1');
    const tokens = await codeAtClient(session, 'hank-1');
    await session.context.close();
    const user = await showUser('hank');
    assert.equal(user.email, '-', 'no unverified e-mail on the new user');
    assert.equal(user.group_id, '0');
    assert.equal((await echo(tokens.access_token)).headers.user_id, user.id);
  });
  await check('admin_claim: gina (groups staff + authgate-admins) is provisioned as an admin; without it, the next sign-in removes the role', async () => {
    await claims('gina', { sub: 'gina-sub', groups: ['staff', 'authgate-admins'], gid: 7 });
    const first = await viaOidp(browser, 'gina', 'gina-1');
    await codeAtClient(first, 'gina-1');
    await first.context.close();
    let user = await showUser('gina');
    assert.match(user.roles, /\badmin\b/, `roles: ${user.roles}`);
    await claims('gina', { sub: 'gina-sub', groups: ['staff'], gid: 7 });
    const second = await viaOidp(browser, 'gina', 'gina-2');
    await codeAtClient(second, 'gina-2');
    await second.context.close();
    user = await showUser('gina');
    assert.doesNotMatch(user.roles, /\badmin\b/, `roles: ${user.roles}`);
    const remaps = await audit('provider.remap');
    assert.ok(remaps.some((r) => r.subject === `user:${user.id}` && JSON.stringify(r.details?.admin) === '[true,false]'),
      remaps.map((r) => JSON.stringify(r)).join('\n'));
  });
}

async function slowDiscovery(browser) {
  await check('a slow discovery document (4 s, timeout 2s): 503 "not reachable" within the timeout', async () => {
    const answer = await fetch(`${OIDP}/__test/tamper?what=slow-discovery`, { method: 'POST' });
    assert.equal(answer.status, 204);
    const session = await fresh(browser);
    const { page } = session;
    await page.goto(authorizeUrl('slow-1'));
    const from = logSize();
    await page.getByRole('link', { name: `Sign in with ${OIDP_LABEL}` }).click();
    await page.waitForLoadState('load');
    assert.equal(providerResponses(session.responses, 'oidp', 'start').at(-1)?.status, 503);
    const text = await page.locator('body').innerText();
    assert.ok(text.includes(`${OIDP_LABEL} is not reachable right now`), text);
    // The gateway's own time for the request (its access log), not the busy machine's.
    const line = logSince(from).split('\n').filter(Boolean).map((l) => {
      try { return JSON.parse(l); } catch { return {}; }
    }).find((l) => l.path === '/open/providers/oidp/start' && l.status === 503);
    assert.ok(line, 'the access log line of the 503');
    assert.ok(line.total_ms >= 1900 && line.total_ms < 3800, `the gateway answered after ${line.total_ms} ms`);
    await session.context.close();
    await new Promise((r) => setTimeout(r, 2500)); // the slow answer goes out before the next check
  });
}

async function cancelled(browser) {
  await check('Cancel at oidc-provider (error=access_denied): 400 page in words with a link back, no code', async () => {
    const session = await fresh(browser);
    const { page } = session;
    await clickProvider(page, 'cancel-1', OIDP_LABEL);
    await page.waitForURL((url) => url.origin === OIDP);
    await Promise.all([settled(page), page.getByRole('link', { name: '[ Cancel ]' }).click()]);
    await shot(page, 'cancelled.png');
    // The spec's example reads "Corp SSO did not sign you in: access_denied"; the gateway puts
    // the error in words with its code in brackets: both name the provider, the code and what it said.
    await refused(session, 'oidp', 400, [`${OIDP_LABEL} did not sign you in`, 'access_denied', 'End-User aborted interaction']);
    const back = new URL(page.url());
    assert.equal(back.searchParams.get('error'), 'access_denied');
    // The link back leads to the login page of the same request.
    await Promise.all([
      page.waitForURL((u) => u.origin === BASE && u.pathname === '/open/authorize/index'),
      page.locator(`a[href*="/open/authorize/index"]`).first().click(),
    ]);
    assert.equal(new URL(page.url()).searchParams.get('state'), 'cancel-1');
    await page.getByLabel(USERNAME_LABEL).waitFor();
    await session.context.close();
  });
}

async function implicitPage(browser) {
  await check('the implicit page has the buttons too: oidc-provider (carol) -> the access token in the fragment', async () => {
    const session = await fresh(browser);
    const { page } = session;
    const query = new URLSearchParams({
      response_type: 'token', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, state: 'implicit-1', scope: 'read',
    });
    await page.goto(`${BASE}/open/implicit?${query}`);
    const button = page.getByRole('link', { name: `Sign in with ${OIDP_LABEL}` });
    const returnTo = new URL(new URL(await button.getAttribute('href'), BASE).searchParams.get('return_to'), BASE);
    assert.equal(returnTo.pathname, '/open/implicit');
    await button.click();
    await signInAtOidp(page, 'carol');
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, REDIRECT_URI, `at ${url}`);
    const fragment = new URLSearchParams(url.hash.slice(1));
    assert.equal(fragment.get('state'), 'implicit-1');
    assert.ok(fragment.get('access_token'), `an access token in ${url}`);
    assert.ok(Number(fragment.get('expires_in')) <= 600, 'capped by max_session');
    const body = await echo(fragment.get('access_token'));
    assert.equal(body.headers.user_id, (await showUser('carol')).id);
    await session.context.close();
  });
}

async function sessionRoute(browser) {
  await check('a session route: /web -> /open/signin -> oidc-provider (carol) -> back on /web as carol', async () => {
    const session = await fresh(browser);
    const { page } = session;
    await page.goto(`${BASE}/web/page?x=1`);
    await page.waitForURL((u) => u.origin === BASE && u.pathname === '/open/signin');
    const button = page.getByRole('link', { name: `Sign in with ${OIDP_LABEL}` });
    const returnTo = new URL(new URL(await button.getAttribute('href'), BASE).searchParams.get('return_to'), BASE);
    assert.equal(returnTo.pathname, '/open/signin');
    await shot(page, 'signin-providers.png');
    await button.click();
    await signInAtOidp(page, 'carol');
    await page.waitForURL((u) => u.origin === BASE && u.pathname === '/web/page');
    const body = JSON.parse(await page.locator('body').innerText());
    assert.equal(body.headers.user_id, (await showUser('carol')).id, JSON.stringify(body.headers));
    assert.equal(body.headers.group_id, '7');
    await shot(page, 'session-route.png');
    await session.context.close();
  });
}

async function tokenEndpointDown(browser) {
  await check('the token endpoint does not answer: 503 not reachable, a link back, no code', async () => {
    const down = await fetch(`${OIDP}/__test/token-down`, { method: 'POST' });
    assert.equal(down.status, 204);
    try {
      const session = await viaOidp(browser, 'carol', 'carol-down');
      await shot(session.page, 'token-endpoint-down.png');
      await refused(session, 'oidp', 503, [`${OIDP_LABEL} is not reachable right now`]);
      const back = session.page.getByRole('link', { name: 'Sign in with your password' });
      const href = new URL(await back.getAttribute('href'), BASE);
      assert.equal(href.origin, BASE);
      assert.equal(href.pathname, '/open/authorize/index');
      assert.equal(href.searchParams.get('state'), 'carol-down');
      await session.context.close();
    } finally {
      await fetch(`${OIDP}/__test/token-up`, { method: 'POST' });
    }
  });
}

async function providerDown(browser) {
  await check('oidc-provider killed: its button gives "not reachable" (503); the password form still works', async () => {
    process.kill(OIDP_PID, 'SIGTERM');
    for (let i = 0; i < 50; i += 1) {
      try {
        process.kill(OIDP_PID, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const session = await fresh(browser);
    const { page } = session;
    await clickProvider(page, 'alice-1', OIDP_LABEL);
    await page.waitForLoadState('load');
    await shot(page, 'provider-down.png');
    const url = new URL(page.url());
    assert.equal(`${url.origin}${url.pathname}`, `${BASE}/open/providers/oidp/start`, `at ${url}`);
    const start = providerResponses(session.responses, 'oidp', 'start');
    assert.equal(start.at(-1)?.status, 503);
    const text = await page.locator('body').innerText();
    assert.ok(text.includes(`${OIDP_LABEL} is not reachable right now`), text);
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/open/authorize/index'),
      page.getByRole('link', { name: 'Sign in with your password' }).click(),
    ]);
    assert.equal(new URL(page.url()).searchParams.get('state'), 'alice-1');
    await page.getByLabel(USERNAME_LABEL).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
    await Promise.all([settled(page), page.getByRole('button', { name: 'Sign in' }).click()]);
    const tokens = await codeAtClient(session, 'alice-1');
    const body = await echo(tokens.access_token);
    assert.equal(body.headers.user_id, '100');
    assert.equal(body.headers.group_id, '7');
    await session.context.close();
  });
}

async function passwordFormOff(browser) {
  // A page loaded while the password form was on, submitted after it is switched off: does the
  // gateway still take the password? (The spec only says what the pages show; recorded.)
  const stale = await fresh(browser);
  await stale.page.goto(authorizeUrl('stale-form'));
  await stale.page.getByLabel(USERNAME_LABEL).fill('alice');
  await stale.page.getByLabel('Password', { exact: true }).fill('correct horse battery');
  await check('password_form = false (config edited, reloaded): the login page shows only the buttons', async () => {
    const from = logSize();
    const config = readFileSync(AUTHGATE_CONFIG, 'utf8');
    assert.match(config, /^\[login\]$/m);
    writeFileSync(AUTHGATE_CONFIG, config.replace(/^\[login\]$/m, '[login]\npassword_form = false'));
    for (let i = 0; i < 100 && !logSince(from).includes('config reloaded'); i += 1) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(logSince(from).includes('config reloaded'), 'the gateway reloaded its config');
    const session = await fresh(browser);
    const { page } = session;
    await page.goto(authorizeUrl('buttons-only'));
    await page.getByRole('link', { name: `Sign in with ${OIDP_LABEL}` }).waitFor();
    await page.getByRole('link', { name: `Sign in with ${GW2_LABEL}` }).waitFor();
    assert.equal(await page.getByLabel('Password', { exact: true }).count(), 0, 'no password field');
    assert.equal(await page.getByLabel(USERNAME_LABEL).count(), 0, 'no login name field');
    await shot(page, 'buttons-only.png');
    await session.context.close();
  });
  await check('password_form = false: a password form loaded before the switch is not accepted any more (4xx, no code)', async () => {
    const [answer] = await Promise.all([
      stale.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/open/authorize/index'),
      stale.page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    await stale.page.waitForLoadState('load');
    assert.ok(answer.status() >= 400 && answer.status() < 500, `the POST answered ${answer.status()}`);
    assert.deepEqual(stale.hits().map(String), [], 'nothing reached the client');
    assert.equal(await sessionCookie(stale.context), undefined, 'no session cookie');
  });
  await stale.context.close();
}

async function refusalsLogged(from) {
  await check('each refusal is logged at warn (target authgate::login)', async () => {
    const lines = logSince(from).split('\n').filter(Boolean).flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
    const warns = lines.filter((l) => String(l.level).toLowerCase() === 'warn' && l.target === 'authgate::login');
    // mallory, eve, boss, dora, Cancel, 10 tampered answers, no iss, the other browser, the
    // token endpoint: 18 refusals, each with a reason.
    assert.ok(warns.length >= 18, `${warns.length} warn lines of authgate::login: ${JSON.stringify(warns)}`);
    const text = warns.map((l) => JSON.stringify(l)).join('\n');
    for (const reason of [/alice/, /required claim|not allowed/i, /admin/i, /disabled/i, /access_denied/,
      /\biss\b/, /signature/i, /nonce/i, /audience|\baud\b/i, /expired/i, /cookie/i, /token endpoint/i]) {
      assert.match(text, reason, 'a reason in the warn lines');
    }
  });
}

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
    console.log(`browser: ${EXECUTABLE} ${browser.version()}; gateway: ${BASE}; authgate2: ${BASE2}; oidc-provider: ${OIDP}`);
    try {
      await loginPage(browser);
      await provisioned(browser);
      await secondGateway(browser);
      await linkedByEmail(browser);
      await auditAndUnlink(browser);
      const from = logSize();
      await refusals(browser);
      await startChecks(browser);
      await adminMapping(browser);
      await slowDiscovery(browser);
      await cancelled(browser);
      await tampered(browser);
      await boundToBrowser(browser);
      await tokenEndpointDown(browser);
      await refusalsLogged(from);
      await sessionRoute(browser);
      await implicitPage(browser);
      await providerDown(browser);
      await passwordFormOff(browser);
    } finally {
      await browser.close();
    }
  } finally {
    client.close();
  }
  console.log(`${passes} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((error) => {
  console.log(`FAIL ${error?.stack ?? error}`);
  console.log(`${passes} passed, ${failures + 1} failed`);
  process.exit(1);
});
