#!/usr/bin/env python3
"""Third-party interop checks of OpenID Connect with authlib's OIDC client.

authlib (1.9) assembles its OpenID Connect clients for Flask, Django and Starlette from
framework-neutral pieces: OAuth2Mixin (discovery from `server_metadata_url`, the authorization
URL with PKCE and — when the scope has `openid` — a nonce, the token request) and OpenIDMixin
(`parse_id_token`: the signature against `jwks_uri` with joserfc, then authlib.oidc.core's
CodeIDToken: iss, aud, exp, iat, nonce, azp and at_hash; `userinfo`; `create_logout_url`).
`RelyingParty` below is those same pieces on authlib's requests OAuth2Session, without a web
framework (the test keeps state, nonce and code_verifier itself, as a framework's session would).

Checked, for an RS256 client (client_secret_basic) and an ES256 one:
  * discovery from /.well-known/openid-configuration names the issuer;
  * the code flow with PKCE (S256), nonce and state through the login page (driven like a
    browser, as in code_flow.py), the authorization response's RFC 9207 `iss`;
  * parse_id_token validates the ID token (a wrong nonce and a foreign access token, via
    at_hash, are refused — the validation is not vacuous);
  * userinfo() returns the claims (sub, preferred_username, email, gid a number);
  * a refresh returns a new ID token that validates the same way (same sub and auth_time, no
    nonce);
  * RP-initiated logout with create_logout_url ends the session (prompt=none: login_required).

Each check prints PASS or FAIL; the exit status is non-zero when any check fails.
Normally started by tests/interop/run.sh, which registers the clients passed here.
"""

import argparse
import sys
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import requests
from authlib.integrations.base_client import FrameworkIntegration
from authlib.integrations.base_client.sync_app import BaseApp, OAuth2Mixin
from authlib.integrations.base_client.sync_openid import OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from joserfc.errors import InvalidClaimError

from code_flow import SESSION_COOKIE, cookie, login_form, run_checks
from oauth2_interop import TIMEOUT, CheckFailed, expect

SCOPE = "openid profile email"


class NoFramework(FrameworkIntegration):
    """Where a web framework would store refreshed tokens: nowhere (the checks hold them)."""

    def update_token(self, token, refresh_token=None, access_token=None):
        pass


class RelyingParty(OAuth2Mixin, OpenIDMixin, BaseApp):
    """authlib's OpenID Connect client (as FlaskOAuth2App, minus Flask)."""

    client_cls = OAuth2Session


class OidcInterop:
    def __init__(self, args):
        self.args = args
        self.issuer = args.issuer.rstrip("/")
        self.ca = args.ca
        self.user_id = str(args.user_id)
        self.state = {}  # what one check leaves to the next

    # --- helpers ---------------------------------------------------------------------------

    def relying_party(self, client_id, client_secret):
        return RelyingParty(
            NoFramework("authgate"),
            name="authgate",
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=self.issuer + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": SCOPE,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_basic",
                "verify": self.ca,
                # As in oauth2_interop.py: REQUESTS_CA_BUNDLE would override `verify` otherwise.
                "trust_env": False,
                "default_timeout": TIMEOUT,
            },
        )

    def browser(self):
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca
        return session

    def needs(self, key):
        expect(key in self.state, f"needs an earlier check that failed ({key})")
        return self.state[key]

    def claims_options(self, client_id):
        # parse_id_token checks only `iss` unless told more; a relying party also pins `aud`.
        return {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": client_id},
        }

    def parse(self, rp, token, nonce):
        return rp.parse_id_token(token, nonce, claims_options=self.claims_options(rp.client_id))

    def redirected(self, answer, redirect_uri):
        expect(answer.status_code == 303, f"expected a 303, got HTTP {answer.status_code} {answer.text[:300]}")
        location = answer.headers.get("Location", "")
        expect(location.startswith(redirect_uri + "?"), f"Location: {urlsplit(location).path!r}")
        return location

    def sign_in(self, rp, browser, **extra):
        """authlib's authorization request; the login page signed in like a browser. The
        request (url, state, nonce, code_verifier) and the redirect's Location."""
        request = rp.create_authorization_url(self.args.redirect_uri, **extra)
        expect(request.get("nonce") and request.get("code_verifier"), f"authlib sent no nonce or PKCE: {list(request)}")
        query = parse_qs(urlsplit(request["url"]).query)
        expect(query.get("code_challenge_method") == ["S256"], "authlib built no S256 challenge")
        expect(query.get("nonce") == [request["nonce"]], "the URL carries another nonce")
        page = browser.get(request["url"], allow_redirects=False, timeout=TIMEOUT)
        expect(page.status_code == 200, f"login page: HTTP {page.status_code} {page.text[:300]}")
        form = login_form(page.text)
        data = form.hidden() + [
            ("username", self.args.user),
            ("password", self.args.user_password),
            ("action", "login"),
        ]
        answer = browser.post(urljoin(page.url, form.action), data=data, allow_redirects=False, timeout=TIMEOUT)
        location = self.redirected(answer, self.args.redirect_uri)
        params = parse_qs(urlsplit(location).query)
        expect(params.get("iss") == [self.issuer], f"RFC 9207 iss: {params.get('iss')}")
        expect(params.get("state") == [request["state"]], "the state came back changed")
        return request, location

    def code_flow(self, rp, browser):
        request, location = self.sign_in(rp, browser)
        token = rp.fetch_access_token(
            self.args.redirect_uri,
            authorization_response=location,
            state=request["state"],  # authlib checks the Location's state against it
            code_verifier=request["code_verifier"],
        )
        expect(token.get("access_token") and token.get("id_token") and token.get("refresh_token"),
               f"token response fields: {sorted(token)}")
        return request, token

    def expect_claims(self, claims, client_id, what):
        expect(claims["sub"] == self.user_id, f"{what}: sub {claims['sub']!r}")
        expect(claims.get("azp") == client_id, f"{what}: azp {claims.get('azp')!r}")
        expect(isinstance(claims.get("auth_time"), int), f"{what}: auth_time {claims.get('auth_time')!r}")
        expect(isinstance(claims.get("gid"), int), f"{what}: gid {claims.get('gid')!r} is not a number")
        expect(claims.get("at_hash"), f"{what}: no at_hash")

    def expect_refused(self, claim, call):
        try:
            call()
        except InvalidClaimError as error:
            expect(error.claim == claim, f"refused for {error.claim!r}, expected {claim!r}")
            return
        raise CheckFailed(f"an ID token with a wrong {claim} was accepted")

    # --- checks ----------------------------------------------------------------------------

    def discovery(self):
        rp = self.relying_party(self.args.client_id, self.args.client_secret)
        metadata = rp.load_server_metadata()
        expect(metadata.get("issuer") == self.issuer, f"issuer {metadata.get('issuer')!r}")
        for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                    "end_session_endpoint"):
            expect(metadata.get(key, "").startswith(self.issuer + "/"), f"{key}: {metadata.get(key)!r}")
        self.state["rp"] = rp

    def rs256_flow(self):
        rp = self.needs("rp")
        browser = self.browser()
        request, token = self.code_flow(rp, browser)
        claims = self.parse(rp, token, request["nonce"])
        self.expect_claims(claims, rp.client_id, "ID token")
        expect(claims.get("nonce") == request["nonce"], "nonce")
        alg = jwt.get_unverified_header(token["id_token"]).get("alg")
        expect(alg == "RS256", f"the default ID token alg is {alg!r}")
        expect(claims.get("preferred_username") == self.args.user, f"preferred_username {claims.get('preferred_username')!r}")
        expect(claims.get("email") == self.args.user_email, f"email {claims.get('email')!r}")
        self.state.update(browser=browser, request=request, token=token, claims=claims)

    def refusals(self):
        rp, token, request = self.needs("rp"), self.needs("token"), self.needs("request")
        self.expect_refused("nonce", lambda: self.parse(rp, token, request["nonce"] + "x"))
        other = {**token, "access_token": token["access_token"][:-2] + "xx"}
        self.expect_refused("at_hash", lambda: self.parse(rp, other, request["nonce"]))

    def userinfo(self):
        info = self.needs("rp").userinfo(token=self.needs("token"))
        expect(info.get("sub") == self.user_id, f"sub {info.get('sub')!r}")
        expect(info.get("preferred_username") == self.args.user, f"preferred_username {info.get('preferred_username')!r}")
        expect(info.get("email") == self.args.user_email, f"email {info.get('email')!r}")
        gid = info.get("gid")
        expect(isinstance(gid, int) and gid == self.needs("claims")["gid"], f"gid {gid!r}")

    def refresh(self):
        rp, token, first = self.needs("rp"), self.needs("token"), self.needs("claims")
        refreshed = rp.fetch_access_token(grant_type="refresh_token", refresh_token=token["refresh_token"])
        expect(refreshed.get("id_token") and refreshed["id_token"] != token["id_token"], "no new ID token")
        expect(refreshed.get("refresh_token") not in (None, token["refresh_token"]), "the refresh token did not rotate")
        claims = self.parse(rp, refreshed, None)
        self.expect_claims(claims, rp.client_id, "refreshed ID token")
        expect(claims["auth_time"] == first["auth_time"], f"auth_time {claims['auth_time']} (was {first['auth_time']})")
        expect("nonce" not in claims, "the refreshed ID token carries a nonce")
        info = rp.userinfo(token=refreshed)
        expect(info.get("sub") == self.user_id, f"UserInfo with the refreshed token: sub {info.get('sub')!r}")

    def login_required(self, rp, browser):
        request = rp.create_authorization_url(self.args.redirect_uri, prompt="none")
        answer = browser.get(request["url"], allow_redirects=False, timeout=TIMEOUT)
        params = parse_qs(urlsplit(self.redirected(answer, self.args.redirect_uri)).query)
        expect(params.get("error") == ["login_required"], f"prompt=none: error {params.get('error')}")
        expect(params.get("state") == [request["state"]] and params.get("iss") == [self.issuer],
               "login_required without the state or iss")

    def logout(self):
        rp, browser, token = self.needs("rp"), self.needs("browser"), self.needs("token")
        expect(cookie(browser, SESSION_COOKIE), "no login session to end")
        # With the session, prompt=none is answered with a code (no page).
        request = rp.create_authorization_url(self.args.redirect_uri, prompt="none")
        answer = browser.get(request["url"], allow_redirects=False, timeout=TIMEOUT)
        params = parse_qs(urlsplit(self.redirected(answer, self.args.redirect_uri)).query)
        expect(params.get("code"), f"prompt=none with a session: error {params.get('error')}")
        logout = rp.create_logout_url(
            post_logout_redirect_uri=self.args.post_logout_redirect_uri,
            id_token_hint=token["id_token"],
        )
        answer = browser.get(logout["url"], allow_redirects=False, timeout=TIMEOUT)
        location = self.redirected(answer, self.args.post_logout_redirect_uri)
        expect(parse_qs(urlsplit(location).query).get("state") == [logout["state"]], "logout: the state came back changed")
        expect(not cookie(browser, SESSION_COOKIE), "the session cookie was not cleared")
        self.login_required(rp, browser)

    def es256_flow(self):
        rp = self.relying_party(self.args.es256_client_id, self.args.es256_client_secret)
        request, token = self.code_flow(rp, self.browser())
        claims = self.parse(rp, token, request["nonce"])
        alg = jwt.get_unverified_header(token["id_token"]).get("alg")
        expect(alg == "ES256", f"alg {alg!r}")
        self.expect_claims(claims, rp.client_id, "ES256 ID token")
        refreshed = rp.fetch_access_token(grant_type="refresh_token", refresh_token=token["refresh_token"])
        again = self.parse(rp, refreshed, None)
        alg = jwt.get_unverified_header(refreshed["id_token"]).get("alg")
        expect(alg == "ES256", f"refreshed: alg {alg!r}")
        expect(again["auth_time"] == claims["auth_time"], "refreshed: auth_time changed")

    def run(self):
        return run_checks([
            ("authlib OIDC: discovery (/.well-known/openid-configuration)", self.discovery),
            ("authlib OIDC: code flow + PKCE + nonce (RS256, client_secret_basic); parse_id_token", self.rs256_flow),
            ("authlib OIDC: parse_id_token refuses a wrong nonce and a foreign access token (at_hash)", self.refusals),
            ("authlib OIDC: userinfo()", self.userinfo),
            ("authlib OIDC: refresh returns a new ID token (same sub, auth_time; no nonce)", self.refresh),
            ("authlib OIDC: prompt=none with the session, then create_logout_url ends it", self.logout),
            ("authlib OIDC: ES256 client: code flow, parse_id_token, refresh", self.es256_flow),
        ])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issuer", required=True, help="the gateway's issuer, e.g. https://127.0.0.1:8443")
    parser.add_argument("--ca", required=True, help="PEM certificate to trust (the dev certificate)")
    parser.add_argument("--client-id", required=True, help="a confidential OpenID client (RS256)")
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--es256-client-id", required=True, help="a confidential OpenID client (ES256)")
    parser.add_argument("--es256-client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True, help="registered for both clients")
    parser.add_argument("--post-logout-redirect-uri", required=True, help="registered for both clients")
    parser.add_argument("--user", required=True, help="a user's login name")
    parser.add_argument("--user-id", type=int, required=True)
    parser.add_argument("--user-email", required=True)
    parser.add_argument("--user-password", required=True)
    args = parser.parse_args()
    return OidcInterop(args).run()


if __name__ == "__main__":
    sys.exit(main())
