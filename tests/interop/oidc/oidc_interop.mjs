// Third-party OpenID Connect relying parties against a running authgate.
//
// panva's `openid-client` (v6, on oauth4webapi) and `jose`, used as their documentation says,
// unchanged: discovery from the issuer alone (the library's default path,
// /.well-known/openid-configuration), the code flow with PKCE (S256), nonce and state built by
// `buildAuthorizationUrl`, the authorization response (with RFC 9207 `iss`) and the ID token
// validated by `authorizationCodeGrant` — including the signature against `jwks_uri`
// (`enableNonRepudiationChecks`; without it the library trusts TLS for token-endpoint JWTs) —,
// UserInfo, refresh with a new ID token, `prompt=none` (with a session: a code; without:
// `login_required` surfaced by the library), `max_age`, `response_mode=form_post`, RP-initiated
// logout with `buildEndSessionUrl`, an ES256 client (client_secret_basic) and a public client
// (`None()`, PKCE). `jose` verifies ID tokens independently from the remote JWKS.
//
// The browser is played over HTTP with Node's fetch: GET the authorization URL (the login
// page), read the form's hidden fields, POST them back with the credentials and
// `action=login`, take the 303's Location without following it (the redirect URI does not
// exist). Cookies (`authgate_csrf` with Path=/open, `__Host-authgate-session` with Path=/) are kept by hand.
//
// Each check prints PASS or FAIL; the exit status is non-zero when any check fails.
// Started by tests/interop/run.sh, which registers the clients and passes them in the
// environment (OIDC_*; see `need` below). The gateway's certificate is trusted through
// NODE_EXTRA_CA_CERTS.

import * as client from 'openid-client';
import * as jose from 'jose';

const TIMEOUT_MS = 10_000;

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`oidc_interop: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const env = {
  issuer: need('OIDC_ISSUER').replace(/\/$/, ''),
  rp: { id: need('OIDC_CLIENT_ID'), secret: need('OIDC_CLIENT_SECRET') },
  es: { id: need('OIDC_ES256_CLIENT_ID'), secret: need('OIDC_ES256_CLIENT_SECRET') },
  pub: { id: need('OIDC_PUBLIC_CLIENT_ID') },
  redirectUri: need('OIDC_REDIRECT_URI'),
  postLogoutUri: need('OIDC_POST_LOGOUT_REDIRECT_URI'),
  user: need('OIDC_USER'),
  userId: need('OIDC_USER_ID'),
  email: need('OIDC_USER_EMAIL'),
  password: need('OIDC_USER_PASSWORD'),
};

class CheckFailed extends Error {}

function expect(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

const show = (value) => JSON.stringify(value);

// --- the browser ------------------------------------------------------------------------------

/** Cookies by name with their Path; sent to requests under that path. */
class Browser {
  constructor() {
    this.cookies = new Map();
  }

  header(url) {
    const path = new URL(url).pathname;
    const pairs = [];
    for (const [name, { value, path: scope }] of this.cookies) {
      if (path === scope || path.startsWith(scope.endsWith('/') ? scope : scope + '/')) {
        pairs.push(`${name}=${value}`);
      }
    }
    return pairs.join('; ');
  }

  remember(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [key, val = ''] = attribute.split('=');
        if (key.toLowerCase() === 'path') path = val;
        if (key.toLowerCase() === 'max-age' && Number(val) <= 0) expired = true;
        if (key.toLowerCase() === 'expires' && Date.parse(val) <= Date.now()) expired = true;
      }
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
  }

  cookie(name) {
    return this.cookies.get(name)?.value;
  }

  /** One request, never following redirects. */
  async fetch(url, { method = 'GET', form } = {}) {
    const headers = {};
    const cookie = this.header(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, {
      method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    this.remember(response);
    return response;
  }
}

function decodeEntities(text) {
  return text.replace(/&(?:#(\d+)|#x([0-9a-f]+)|(amp|lt|gt|quot|apos));/gi, (_, dec, hex, named) => {
    if (dec) return String.fromCodePoint(Number(dec));
    if (hex) return String.fromCodePoint(parseInt(hex, 16));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[named.toLowerCase()];
  });
}

function attributes(tag) {
  const found = {};
  for (const [, name, value] of tag.matchAll(/([a-zA-Z_:][-\w:.]*)\s*=\s*"([^"]*)"/g)) {
    found[name.toLowerCase()] = decodeEntities(value);
  }
  return found;
}

/** The page's one form: its action, method and hidden fields in document order. */
function theForm(html) {
  const forms = [...html.matchAll(/<form\b[^>]*>/gi)];
  expect(forms.length === 1, `expected one form on the page, found ${forms.length}`);
  const form = attributes(forms[0][0]);
  const hidden = [];
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    const input = attributes(tag);
    if ((input.type || '').toLowerCase() === 'hidden' && input.name) {
      hidden.push([input.name, input.value ?? '']);
    }
  }
  return { action: form.action ?? '', method: (form.method || 'get').toLowerCase(), hidden };
}

/** Opens the login page at `url` and signs in; the redirect's Location (a URL). */
async function signIn(browser, url) {
  const page = await browser.fetch(url);
  const html = await page.text();
  expect(page.status === 200, `login page: HTTP ${page.status} ${html.slice(0, 300)}`);
  expect((page.headers.get('content-type') || '').startsWith('text/html'),
    `login page Content-Type: ${page.headers.get('content-type')}`);
  expect(browser.cookie('authgate_csrf'), 'the login page set no authgate_csrf cookie');
  const form = theForm(html);
  expect(form.method === 'post', `form method: ${form.method}`);
  const fields = new Map(form.hidden);
  expect(fields.get('csrf_token') === browser.cookie('authgate_csrf'),
    "the form's csrf_token is not the authgate_csrf cookie");
  expect(fields.get('nonce') === url.searchParams.get('nonce'), 'the form does not carry the nonce');
  const answer = await browser.fetch(new URL(form.action, page.url), {
    method: 'POST',
    form: [...form.hidden, ['username', env.user], ['password', env.password], ['action', 'login']],
  });
  return redirected(answer);
}

/** The Location of a 303 to the client's redirect URI. */
async function redirected(response) {
  const location = response.headers.get('location');
  if (response.status !== 303) {
    const text = await response.text();
    throw new CheckFailed(`expected a 303, got HTTP ${response.status} ${text.slice(0, 300)}`);
  }
  expect(location && location.startsWith(env.redirectUri + '?'), `Location: ${location}`);
  return new URL(location);
}

// --- the relying parties ----------------------------------------------------------------------

const discoveryRequests = [];

/** The library's discovery from the issuer alone; `execute` adds signature checks on ID tokens. */
function discover(clientId, metadata, auth) {
  return client.discovery(new URL(env.issuer), clientId, metadata, auth, {
    execute: [client.enableNonRepudiationChecks],
    timeout: TIMEOUT_MS / 1000,
    [client.customFetch]: (url, options) => {
      discoveryRequests.push(url);
      return fetch(url, options);
    },
  });
}

/** An authorization request as the library builds it, with what the RP keeps to check it. */
async function authorizationRequest(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const request = {
    verifier,
    state: client.randomState(),
    nonce: client.randomNonce(),
  };
  request.url = client.buildAuthorizationUrl(config, {
    redirect_uri: env.redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: request.state,
    nonce: request.nonce,
    ...extra,
  });
  return request;
}

function checksFor(request, extra = {}) {
  return {
    pkceCodeVerifier: request.verifier,
    expectedNonce: request.nonce,
    expectedState: request.state,
    ...extra,
  };
}

/** The whole code flow through the login page; the library's validated token response. */
async function codeFlow(config, browser = new Browser()) {
  const request = await authorizationRequest(config);
  expect(request.url.href.startsWith(env.issuer + '/open/authorize/index?'),
    `buildAuthorizationUrl: ${request.url.origin}${request.url.pathname}`);
  const back = await signIn(browser, request.url);
  expect(back.searchParams.get('iss') === env.issuer, `no RFC 9207 iss in ${back.origin}${back.pathname}`);
  const tokens = await client.authorizationCodeGrant(config, back, checksFor(request));
  return { tokens, browser, request };
}

function expectIdClaims(claims, clientId, what) {
  expect(claims, `${what}: no ID token`);
  expect(claims.iss === env.issuer, `${what}: iss ${claims.iss}`);
  expect(claims.sub === env.userId, `${what}: sub ${claims.sub}`);
  expect(claims.aud === clientId || show(claims.aud) === show([clientId]), `${what}: aud ${show(claims.aud)}`);
  expect(claims.azp === clientId, `${what}: azp ${claims.azp}`);
  expect(Number.isInteger(claims.auth_time), `${what}: auth_time ${claims.auth_time}`);
  expect(Number.isInteger(claims.gid), `${what}: gid ${show(claims.gid)} is not a number`);
}

async function expectLoginRequired(config, browser) {
  const request = await authorizationRequest(config, { prompt: 'none' });
  const answer = await browser.fetch(request.url);
  const back = await redirected(answer);
  expect(back.searchParams.get('error') === 'login_required', `prompt=none answered ${back.search.replace(/code=[^&]*/, 'code=…')}`);
  try {
    await client.authorizationCodeGrant(config, back, checksFor(request));
  } catch (error) {
    expect(error instanceof client.AuthorizationResponseError,
      `expected AuthorizationResponseError, got ${error.name}: ${error.message}`);
    expect(error.error === 'login_required', `error: ${error.error}`);
    return;
  }
  throw new CheckFailed('authorizationCodeGrant accepted a login_required response');
}

// --- the checks -------------------------------------------------------------------------------

const s = {}; // what one check leaves to the next

function needs(key) {
  expect(s[key] !== undefined, `needs an earlier check that failed (${key})`);
  return s[key];
}

const checks = [
  ['discovery: client.discovery(issuer) (default path), metadata as served', async () => {
    s.rp = await discover(env.rp.id, env.rp.secret);
    const first = new URL(discoveryRequests[0]);
    expect(first.pathname === '/.well-known/openid-configuration',
      `the library asked ${first.pathname}`);
    const m = s.rp.serverMetadata();
    expect(m.issuer === env.issuer, `issuer ${m.issuer}`);
    expect(m.authorization_endpoint === env.issuer + '/open/authorize/index', `authorization_endpoint ${m.authorization_endpoint}`);
    expect(m.token_endpoint === env.issuer + '/oauth2/token', `token_endpoint ${m.token_endpoint}`);
    expect(m.userinfo_endpoint === env.issuer + '/oauth2/userinfo', `userinfo_endpoint ${m.userinfo_endpoint}`);
    expect(m.end_session_endpoint === env.issuer + '/open/logout', `end_session_endpoint ${m.end_session_endpoint}`);
    expect(m.jwks_uri === env.issuer + '/.well-known/jwks.json', `jwks_uri ${m.jwks_uri}`);
    expect(m.authorization_response_iss_parameter_supported === true, 'no authorization_response_iss_parameter_supported');
    expect(s.rp.serverMetadata().supportsPKCE('S256'), 'supportsPKCE(S256) is false');
  }],

  ['code flow + PKCE + nonce + state (client_secret_post): ID token validated by openid-client', async () => {
    const { tokens, browser } = await codeFlow(needs('rp'));
    expect(tokens.access_token && tokens.refresh_token && tokens.id_token, `token response fields: ${Object.keys(tokens)}`);
    expect(tokens.token_type.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`);
    const claims = tokens.claims();
    expectIdClaims(claims, env.rp.id, 'ID token');
    expect(typeof claims.at_hash === 'string', 'no at_hash');
    expect(show(claims.amr) === show(['pwd']), `amr ${show(claims.amr)}`);
    expect(claims.preferred_username === env.user, `preferred_username ${claims.preferred_username}`);
    expect(claims.email === env.email, `email ${claims.email}`);
    expect(jose.decodeProtectedHeader(tokens.id_token).alg === 'RS256', 'the default ID token alg is not RS256');
    expect(browser.cookie('__Host-authgate-session'), 'the login set no __Host-authgate-session cookie');
    Object.assign(s, { tokens, claims, browser });
  }],

  ['openid-client refuses an ID token whose nonce is not the expected one (the checks are live)', async () => {
    const config = needs('rp');
    const request = await authorizationRequest(config);
    const back = await signIn(new Browser(), request.url);
    try {
      await client.authorizationCodeGrant(config, back, checksFor(request, { expectedNonce: request.nonce + 'x' }));
    } catch (error) {
      // openid-client's ClientError wraps oauth4webapi's, which names the claim.
      expect(error.code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' && error.cause?.cause?.claim === 'nonce',
        `refused, but with ${error.name} [${error.code}] ${error.message}`);
      return;
    }
    throw new CheckFailed('authorizationCodeGrant accepted an unexpected nonce');
  }],

  ['UserInfo: fetchUserInfo(access_token, sub)', async () => {
    const info = await client.fetchUserInfo(needs('rp'), needs('tokens').access_token, env.userId);
    expect(info.sub === env.userId, `sub ${info.sub}`);
    expect(info.preferred_username === env.user, `preferred_username ${info.preferred_username}`);
    expect(info.email === env.email, `email ${info.email}`);
    expect(typeof info.email_verified === 'boolean', `email_verified ${show(info.email_verified)}`);
    expect(Number.isInteger(info.gid) && info.gid === needs('claims').gid, `gid ${show(info.gid)}`);
  }],

  ['refresh: refreshTokenGrant returns a new ID token (validated; same sub, auth_time; no nonce)', async () => {
    const first = needs('claims');
    const refreshed = await client.refreshTokenGrant(needs('rp'), needs('tokens').refresh_token);
    expect(refreshed.id_token && refreshed.id_token !== s.tokens.id_token, 'no new ID token');
    const claims = refreshed.claims();
    expectIdClaims(claims, env.rp.id, 'refreshed ID token');
    expect(claims.auth_time === first.auth_time, `auth_time ${claims.auth_time}, was ${first.auth_time}`);
    expect(claims.nonce === undefined, 'the refreshed ID token carries a nonce');
    expect(refreshed.refresh_token && refreshed.refresh_token !== s.tokens.refresh_token, 'the refresh token did not rotate');
    const info = await client.fetchUserInfo(s.rp, refreshed.access_token, env.userId);
    expect(info.sub === env.userId, `UserInfo with the refreshed token: sub ${info.sub}`);
  }],

  ['jose: jwtVerify(id_token, createRemoteJWKSet(jwks_uri), issuer, audience); tampered refused', async () => {
    const jwks = jose.createRemoteJWKSet(new URL(needs('rp').serverMetadata().jwks_uri));
    s.jwks = jwks;
    const idToken = needs('tokens').id_token;
    const { payload, protectedHeader } = await jose.jwtVerify(idToken, jwks, {
      issuer: env.issuer,
      audience: env.rp.id,
      algorithms: ['RS256'],
    });
    expect(protectedHeader.kid, 'the ID token header names no kid');
    expect(payload.sub === env.userId && payload.nonce === s.claims.nonce, 'jose read other claims');
    const [header, body, signature] = idToken.split('.');
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
    try {
      await jose.jwtVerify(`${header}.${body}.${flipped}`, jwks, { issuer: env.issuer, audience: env.rp.id });
    } catch (error) {
      expect(error instanceof jose.errors.JWSSignatureVerificationFailed, `tampered: ${error.name}`);
      return;
    }
    throw new CheckFailed('jose verified a tampered ID token');
  }],

  ['prompt=none with the session cookie → a code (max_age checked by the library; auth_time kept)', async () => {
    const config = needs('rp');
    const browser = needs('browser');
    const request = await authorizationRequest(config, { prompt: 'none', max_age: '600' });
    const back = await redirected(await browser.fetch(request.url));
    expect(back.searchParams.get('code'), `no code: error=${back.searchParams.get('error')}`);
    const tokens = await client.authorizationCodeGrant(config, back, checksFor(request, { maxAge: 600 }));
    const claims = tokens.claims();
    expectIdClaims(claims, env.rp.id, 'ID token');
    expect(claims.auth_time === needs('claims').auth_time, `auth_time ${claims.auth_time}, signed in at ${s.claims.auth_time}`);
  }],

  ['response_mode=form_post: the posted response (a Request) accepted by authorizationCodeGrant', async () => {
    const config = needs('rp');
    const request = await authorizationRequest(config, { prompt: 'none', response_mode: 'form_post' });
    const page = await needs('browser').fetch(request.url);
    const html = await page.text();
    expect(page.status === 200, `form_post page: HTTP ${page.status} ${html.slice(0, 300)}`);
    const form = theForm(html);
    expect(form.method === 'post' && form.action === env.redirectUri, `form: ${form.method} ${form.action}`);
    const posted = new Request(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form.hidden).toString(),
    });
    const tokens = await client.authorizationCodeGrant(config, posted, checksFor(request));
    expectIdClaims(tokens.claims(), env.rp.id, 'ID token');
  }],

  ['prompt=none without a session → AuthorizationResponseError login_required', async () => {
    await expectLoginRequired(needs('rp'), new Browser());
  }],

  ['RP-initiated logout: buildEndSessionUrl → 303 to the post-logout URI with state; then login_required', async () => {
    const config = needs('rp');
    const browser = needs('browser');
    const session = browser.cookies.get('__Host-authgate-session');
    expect(session, 'no session to end');
    const state = client.randomState();
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: needs('tokens').id_token,
      post_logout_redirect_uri: env.postLogoutUri,
      state,
    });
    expect(url.href.startsWith(env.issuer + '/open/logout?'), `end-session URL ${url.origin}${url.pathname}`);
    const answer = await browser.fetch(url);
    expect(answer.status === 303, `logout: HTTP ${answer.status} ${(await answer.text()).slice(0, 300)}`);
    const back = new URL(answer.headers.get('location'));
    expect(back.origin + back.pathname === env.postLogoutUri, `Location ${back.origin}${back.pathname}`);
    expect(back.searchParams.get('state') === state, `state ${back.searchParams.get('state')}`);
    expect(!browser.cookie('__Host-authgate-session'), 'the session cookie was not cleared');
    await expectLoginRequired(config, browser);
    // The old cookie, replayed: the session ended on the server, not only in the browser.
    browser.cookies.set('__Host-authgate-session', session);
    await expectLoginRequired(config, browser);
  }],

  ['ES256 client (client_secret_basic, id_token_signed_response_alg ES256): code flow, jose verifies', async () => {
    const config = await discover(env.es.id, { client_secret: env.es.secret, id_token_signed_response_alg: 'ES256' },
      client.ClientSecretBasic(env.es.secret));
    const { tokens } = await codeFlow(config);
    expectIdClaims(tokens.claims(), env.es.id, 'ES256 ID token');
    const jwks = s.jwks ?? jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
    const { protectedHeader, payload } = await jose.jwtVerify(tokens.id_token, jwks, {
      issuer: env.issuer,
      audience: env.es.id,
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg === 'ES256', `alg ${protectedHeader.alg}`);
    expect(payload.azp === env.es.id, `azp ${payload.azp}`);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    expect(jose.decodeProtectedHeader(refreshed.id_token).alg === 'ES256', 'the refreshed ID token is not ES256');
    expectIdClaims(refreshed.claims(), env.es.id, 'refreshed ES256 ID token');
  }],

  ['public client (token_endpoint_auth_method none, client.None()): code flow with PKCE, refresh', async () => {
    const config = await discover(env.pub.id, { token_endpoint_auth_method: 'none' }, client.None());
    const { tokens } = await codeFlow(config);
    expectIdClaims(tokens.claims(), env.pub.id, 'ID token');
    await jose.jwtVerify(tokens.id_token, needs('jwks'), { issuer: env.issuer, audience: env.pub.id });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    expectIdClaims(refreshed.claims(), env.pub.id, 'refreshed ID token');
  }],
];

let failed = 0;
for (const [name, check] of checks) {
  try {
    await check();
    console.log(`PASS ${name}`);
  } catch (error) {
    failed += 1;
    if (error instanceof CheckFailed) {
      console.log(`FAIL ${name}: ${error.message}`);
    } else {
      // The library's own refusals: name, code and message say what it expected (no tokens).
      const code = error.code ? ` [${error.code}]` : '';
      const oauth = error.error ? ` error=${error.error} ${error.error_description ?? ''}` : '';
      console.log(`FAIL ${name}: ${error.name}${code}: ${error.message}${oauth}`);
      // What the library expected (oauth4webapi's error, wrapped by openid-client's), never
      // the tokens or claims it carries.
      const inner = error.cause instanceof Error ? error.cause : error;
      const detail = inner.cause ?? {};
      if (inner !== error) console.log(`     cause: ${inner.message}`);
      if (detail.reason || detail.expected || detail.claim || detail.attribute) {
        console.log(`     ${show({ reason: detail.reason, expected: detail.expected, claim: detail.claim, attribute: detail.attribute })}`);
      }
    }
  }
}
console.log(`${checks.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
