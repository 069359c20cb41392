// A real OpenID Connect provider for the providers end-to-end test: node-oidc-provider (the
// certified implementation by panva), over plain HTTP on 127.0.0.1 (authgate names it with
// allow_insecure_loopback = true).
//
// Usage:   node provider.mjs [PORT]        (PORT also from OIDP_PORT; 0 or none: a free port)
// Prints   "listening <port>" on stdout once it accepts connections; the issuer is
//          http://127.0.0.1:<port>.
//
// Environment:
//   OIDP_CLIENT_ID, OIDP_CLIENT_SECRET, OIDP_REDIRECT_URI   the one confidential client
//                                     (client_secret_basic at the token endpoint, PKCE S256
//                                     required, authorization_code only)
//
// Sign-in: the provider's built-in development interactions (devInteractions): a form that
// takes any login name (and any password), and a "[ Cancel ]" link (error=access_denied); consent is granted at once (loadExistingGrant
// below), so after the login form the browser goes straight back to the client. The accounts
// (findAccount) are fixed:
//   carol    sub carol-sub, carol@example.com (verified), preferred_username carol,
//            groups [staff], gid 7                       -> provisioned by authgate
//   dave     sub dave-sub, dave@corp.example (verified), groups [staff], gid 8
//                                                       -> linked by e-mail to the local dave
//   mallory  sub mallory, alice@example.com NOT verified, preferred_username alice,
//            groups [staff]                 -> must not be linked to alice (nor provisioned)
//   eve      sub eve, eve@example.com (verified), groups [] -> refused by required_claim
//   boss     sub boss-sub, root@corp.example (verified), preferred_username root, groups [staff]
//                                 -> the local admin root's e-mail: must not be linked
//   dora     sub dora-sub, dora@corp.example (verified), groups [staff]
//                                                       -> links by e-mail to a disabled user
//   any other name: sub = the name, preferred_username = the name, groups [staff], no e-mail.
// The ID token carries every claim of the granted scopes (conformIdTokenClaims: false); the
// `profile` scope carries preferred_username, groups and gid as well. UserInfo answers the same.
// Authorization responses carry `iss` (RFC 9207; discovery says
// authorization_response_iss_parameter_supported).
//
// Test hooks (not part of OpenID Connect; on the same port):
//   POST /__test/token-down   from now on the token endpoint drops the connection (no answer)
//   POST /__test/token-up     back to normal
//   GET  /__test/log          the requests seen so far (method and path, one a line)
//   POST /__test/claims?login=NAME  (a JSON object) claims merged over that account's from now on
//   POST /__test/tamper?what=W  the next answer of one kind is changed (then back to normal):
//        callback-iss     the authorization response's `iss` names another issuer
//        callback-no-iss  the authorization response has no `iss`
//        slow-discovery   the discovery document answers after 4 s
//        sig | none | hs256 | aud | azp | nonce | exp | iss | kid
//                         the token endpoint's ID token: a broken signature, alg none, HS256
//                         with the client secret, or (re-signed with the real key) another
//                         aud, another azp, another nonce, expired, another iss, an unknown kid

import { createHmac, createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.OIDP_PORT ?? 0);
const CLIENT_ID = env('OIDP_CLIENT_ID');
const CLIENT_SECRET = env('OIDP_CLIENT_SECRET');
const REDIRECT_URI = env('OIDP_REDIRECT_URI');

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const ACCOUNTS = {
  carol: {
    sub: 'carol-sub',
    email: 'carol@example.com',
    email_verified: true,
    preferred_username: 'carol',
    groups: ['staff'],
    gid: 7,
  },
  dave: {
    sub: 'dave-sub',
    email: 'dave@corp.example',
    email_verified: true,
    preferred_username: 'dave',
    groups: ['staff'],
    gid: 8,
  },
  mallory: {
    sub: 'mallory',
    email: 'alice@example.com',
    email_verified: false,
    // alice's account name too: not linked (e-mail not verified), and not provisioned either
    // (the name is taken), so refused.
    preferred_username: 'alice',
    groups: ['staff'],
  },
  eve: {
    sub: 'eve',
    email: 'eve@example.com',
    email_verified: true,
    preferred_username: 'eve',
    groups: [],
  },
  boss: {
    sub: 'boss-sub',
    email: 'root@corp.example',
    email_verified: true,
    // the local admin's e-mail and account name: never linked to an admin, and the name is
    // taken, so refused.
    preferred_username: 'root',
    groups: ['staff'],
    gid: 7,
  },
  dora: {
    sub: 'dora-sub',
    email: 'dora@corp.example',
    email_verified: true,
    preferred_username: 'dora',
    groups: ['staff'],
    gid: 7,
  },
};

// Claims changed at run time (POST /__test/claims?login=NAME with a JSON object): merged over
// the account's own.
const overrides = {};

function claimsOf(accountId) {
  const own = ACCOUNTS[accountId] ?? { sub: accountId, preferred_username: accountId, groups: ['staff'] };
  return { ...own, ...(overrides[accountId] ?? {}) };
}

// A fresh RS256 signing key each start (the provider's own development key would do too, but
// it warns and is the same for everyone).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'oidp-test', alg: 'RS256', use: 'sig' };

const issuer = (p) => `http://127.0.0.1:${p}`;

function makeProvider(listenPort) {
  const provider = new Provider(issuer(listenPort), {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'groups', 'gid'],
    },
    // Every claim of the granted scopes in the ID token too, not only at UserInfo.
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { ...claimsOf(id) };
        },
      };
    },
    // First-party test client: grant whatever it asks for, no consent page.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
      await grant.save();
      return grant;
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    renderError(ctx, out, error) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>oidc-provider error</title><h1>oidc-provider: ${escape(out.error)}</h1><p>${escape(out.error_description ?? '')}</p>`;
    },
  });
  return provider;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Bind first (port 0 picks one), then build the provider for the real issuer URL.

const seen = [];
let tokenDown = false;
let tamper = null; // one-shot: the next matching answer is changed, then back to normal
let callback = null;

const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const unb64 = (text) => JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
function rs256(header, payload) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
}

/** An ID token changed as `what` says; re-signed with the provider's real key unless the change is the signature. */
function tamperIdToken(idToken, what) {
  const [h, p] = idToken.split('.');
  const header = unb64(h);
  const payload = unb64(p);
  const now = Math.floor(Date.now() / 1000);
  switch (what) {
    case 'sig': // the real key's signature, but of other claims
      return `${h}.${p}.${rs256(header, { ...payload, sub: 'someone-else' }).split('.')[2]}`;
    case 'none': // alg none, no signature
      return `${b64({ ...header, alg: 'none' })}.${p}.`;
    case 'hs256': { // alg confusion: HMAC with the client secret
      const input = `${b64({ ...header, alg: 'HS256' })}.${p}`;
      return `${input}.${createHmac('sha256', CLIENT_SECRET).update(input).digest('base64url')}`;
    }
    case 'aud':
      return rs256(header, { ...payload, aud: 'someone-else' });
    case 'azp': // for us among others, but issued to (azp) another client
      return rs256(header, { ...payload, aud: [payload.aud, 'someone-else'], azp: 'someone-else' });
    case 'nonce':
      return rs256(header, { ...payload, nonce: `${payload.nonce}-other` });
    case 'exp':
      return rs256(header, { ...payload, iat: now - 7200, exp: now - 3600 });
    case 'iss':
      return rs256(header, { ...payload, iss: 'http://127.0.0.1:1' });
    case 'kid': // a key the provider never published
      return rs256({ ...header, kid: 'unknown-key' }, payload);
    default:
      throw new Error(`unknown tamper ${what}`);
  }
}

const server = http.createServer((request, response) => {
  const path = request.url.split('?')[0];
  seen.push(`${request.method} ${path}`);
  if (path === '/__test/claims' && request.method === 'POST') {
    const login = new URL(request.url, 'http://x').searchParams.get('login');
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      overrides[login] = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      response.writeHead(204).end();
    });
    return;
  }
  if (tamper === 'slow-discovery' && path === '/.well-known/openid-configuration') {
    tamper = null;
    setTimeout(() => callback(request, response), 4000);
    return;
  }
  if (path === '/__test/tamper' && request.method === 'POST') {
    tamper = new URL(request.url, 'http://x').searchParams.get('what') || null;
    response.writeHead(204).end();
    return;
  }
  // callback-iss: the authorization response's `iss` names another issuer; callback-no-iss: none.
  if (tamper?.startsWith('callback-')) {
    const setHeader = response.setHeader.bind(response);
    const what = tamper;
    response.setHeader = (name, value) => {
      if (name.toLowerCase() === 'location' && String(value).startsWith(REDIRECT_URI)) {
        const url = new URL(String(value));
        if (what === 'callback-iss') url.searchParams.set('iss', 'http://127.0.0.1:1');
        else url.searchParams.delete('iss');
        value = url.href;
        tamper = null;
      }
      return setHeader(name, value);
    };
  }
  // The token endpoint's answer with its ID token changed.
  if (tamper && !tamper.startsWith('callback-') && path === '/token') {
    const what = tamper;
    tamper = null;
    const setHeader = response.setHeader.bind(response);
    const end = response.end.bind(response);
    response.setHeader = (name, value) => (name.toLowerCase() === 'content-length' ? response : setHeader(name, value));
    response.end = (chunk, ...rest) => {
      try {
        const body = JSON.parse(Buffer.from(chunk).toString('utf8'));
        if (body.id_token) body.id_token = tamperIdToken(body.id_token, what);
        chunk = JSON.stringify(body);
      } catch (error) {
        console.error('provider.mjs: could not tamper with the token answer:', error);
      }
      return end(chunk, ...rest);
    };
  }
  if (path === '/__test/token-down' && request.method === 'POST') {
    tokenDown = true;
    response.writeHead(204).end();
    return;
  }
  if (path === '/__test/token-up' && request.method === 'POST') {
    tokenDown = false;
    response.writeHead(204).end();
    return;
  }
  if (path === '/__test/log') {
    response.writeHead(200, { 'content-type': 'text/plain' }).end(seen.join('\n') + '\n');
    return;
  }
  if (tokenDown && path === '/token') {
    request.socket.destroy();
    return;
  }
  callback(request, response);
});

server.listen(port, '127.0.0.1', () => {
  const bound = server.address().port;
  const provider = makeProvider(bound);
  provider.on('server_error', (ctx, error) => console.error('oidc-provider server_error:', error));
  callback = provider.callback();
  console.log(`listening ${bound}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
