#!/usr/bin/env python3
"""Third-party interop checks of the browser code flow (RFC 6749 §4.1 with PKCE, RFC 7636).

authlib's OAuth2Session (code_challenge_method S256) builds the authorization URL for the
gateway's login page (/open/authorize/index); the same HTTP session then plays the browser:
it opens the page, reads the login form with the standard library's html.parser, posts every
hidden field plus the login name, the password and `action=login` (the CSRF token travels both
as the form field and as the `authgate_csrf` cookie the page set: Secure, HttpOnly,
SameSite=Lax, Path=/open, so the jar sends it to the login pages only; the session cookie is
host-only for the whole site: __Host-authgate-session, Path=/), and takes the
303's Location without following it (the client's redirect URI does not exist). authlib turns
that Location into the token request (`fetch_token(..., authorization_response=..., code_verifier=...)`),
checking the state it generated on the way.

Checked for a confidential client (client_secret_basic) and a public one (no secret,
token_endpoint_auth_method "none", PKCE required), plus: a wrong code_verifier and a reused
code are invalid_grant (and the reuse revokes what the first exchange issued), a wrong password
re-renders the form with 400 and redirects nowhere, and the code is also accepted at the seed
endpoint /oauth2/authorize.

Each check prints PASS or FAIL; the exit status is non-zero when any check fails.
Normally started by tests/interop/run.sh, which registers the clients passed here.
"""

import argparse
import sys
import traceback
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Optional
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from oauth2_interop import TIMEOUT, CheckFailed, expect, expect_oauth_error

AUTHORIZE_PAGE = "/open/authorize/index"
CSRF_COOKIE = "authgate_csrf"
SESSION_COOKIE = "__Host-authgate-session"
COOKIE_PATH = "/open"


@dataclass
class Client:
    id: str
    secret: Optional[str]  # None: a public client
    redirect_uri: str


@dataclass
class Form:
    action: str
    method: str
    fields: list  # [(name, value)] of every <input>, in document order
    types: dict  # name -> input type
    buttons: list  # [(name, value)] of the submit buttons

    def hidden(self):
        return [(name, value) for name, value in self.fields if self.types.get(name) == "hidden"]


def run_checks(checks):
    """Runs (name, function) pairs, printing PASS or FAIL for each; 1 when any failed."""
    failed = 0
    for name, function in checks:
        try:
            function()
        except CheckFailed as error:
            failed += 1
            print(f"FAIL {name}: {error}", flush=True)
        except Exception as error:  # an unexpected exception is a failure with its trace
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
        else:
            print(f"PASS {name}", flush=True)
    print(f"{len(checks) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


class FormParser(HTMLParser):
    """The <form>s of a page, with their inputs and submit buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(attrs.get("action", ""), attrs.get("method", "get").lower(), [], {}, [])
            self.forms.append(self._current)
        elif self._current is None or "name" not in attrs:
            return
        elif tag == "input":
            self._current.fields.append((attrs["name"], attrs.get("value", "")))
            self._current.types[attrs["name"]] = attrs.get("type", "text").lower()
        elif tag == "button" and attrs.get("type", "submit").lower() == "submit":
            self._current.buttons.append((attrs["name"], attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def cookie(session, name):
    """The cookie `name` in the session's jar (an http.cookiejar.Cookie), or None."""
    return next((c for c in session.cookies if c.name == name), None)


def expect_attributes(found, same_site=None, path=COOKIE_PATH):
    """Scoped to `path` (the CSRF cookie to the login pages, Path=/open; the host-only session
    cookie to the whole site, Path=/), HTTPS only, out of reach of scripts."""
    expect(found.path == path, f"{found.name}: Path={found.path!r}, expected {path!r}")
    expect(found.secure, f"{found.name} is not Secure")
    expect(found.has_nonstandard_attr("HttpOnly"), f"{found.name} is not HttpOnly")
    if same_site:
        given = found.get_nonstandard_attr("SameSite")
        expect(given == same_site, f"{found.name}: SameSite={given!r}, expected {same_site!r}")


def login_form(html):
    parser = FormParser()
    parser.feed(html)
    parser.close()
    expect(len(parser.forms) == 1, f"expected one form on the login page, found {len(parser.forms)}")
    return parser.forms[0]


@dataclass
class Authorization:
    """One trip through the login page: authlib's session, what it sent, and the answer."""

    session: OAuth2Session
    verifier: str
    state: str
    page: requests.Response  # the GET of the login page
    form: Form
    answer: requests.Response  # the POST of the form

    @property
    def location(self):
        return self.answer.headers.get("Location")


class CodeFlow:
    def __init__(self, args):
        self.args = args
        self.issuer = args.issuer.rstrip("/")
        self.ca = args.ca
        self.authorize_url = self.issuer + AUTHORIZE_PAGE
        self.token_url = self.issuer + "/oauth2/token"
        self.confidential = Client(args.code_client_id, args.code_client_secret, args.redirect_uri)
        self.public = Client(args.public_client_id, None, args.redirect_uri)

    # --- helpers ---------------------------------------------------------------------------

    def session(self, client):
        """authlib's session for `client`: PKCE S256, scope read; it is the browser too."""
        return OAuth2Session(
            client_id=client.id,
            client_secret=client.secret,
            token_endpoint_auth_method="client_secret_basic" if client.secret else "none",
            redirect_uri=client.redirect_uri,
            scope="read",
            code_challenge_method="S256",
            verify=self.ca,
            # As in oauth2_interop.py: REQUESTS_CA_BUNDLE would override `verify` otherwise.
            trust_env=False,
            default_timeout=TIMEOUT,
        )

    def authorize(self, client, password=None):
        """Opens the login page at the URL authlib built and submits the form as a browser
        would; never follows the final redirect."""
        session = self.session(client)
        verifier = generate_token(48)
        url, state = session.create_authorization_url(self.authorize_url, code_verifier=verifier)
        query = parse_qs(urlsplit(url).query)
        expect(query.get("code_challenge_method") == ["S256"] and query.get("code_challenge"),
               f"authlib built no S256 challenge: {url}")

        page = session.get(url, withhold_token=True, allow_redirects=False)
        expect(page.status_code == 200, f"login page: HTTP {page.status_code} {page.text[:300]}")
        expect(page.headers.get("Content-Type", "").startswith("text/html"),
               f"login page Content-Type: {page.headers.get('Content-Type')!r}")
        csrf_cookie = cookie(session, CSRF_COOKIE)
        expect(csrf_cookie, f"the login page set no {CSRF_COOKIE} cookie: {page.headers.get('Set-Cookie')!r}")
        expect_attributes(csrf_cookie, same_site="Lax")
        csrf_cookie = csrf_cookie.value

        form = login_form(page.text)
        expect(form.method == "post", f"form method: {form.method!r}")
        expect(urlsplit(form.action).path == AUTHORIZE_PAGE, f"form action: {form.action!r}")
        hidden = dict(form.hidden())
        expect(hidden.get("csrf_token") == csrf_cookie, "the form's csrf_token is not the CSRF cookie")
        for name in ("client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"):
            expect(hidden.get(name) == query[name][0], f"hidden {name}: {hidden.get(name)!r}, sent {query[name]}")
        expect(form.types.get("username") == "text" and form.types.get("password") == "password",
               f"form inputs: {form.types}")
        expect(("action", "login") in form.buttons, f"no login button: {form.buttons}")

        data = form.hidden() + [
            ("username", self.args.user),
            ("password", self.args.user_password if password is None else password),
            ("action", "login"),
        ]
        answer = session.post(urljoin(page.url, form.action), data=data,
                              withhold_token=True, allow_redirects=False)
        return Authorization(session, verifier, state, page, form, answer)

    def code_response(self, client):
        """A successful login: the Location carrying the code and state."""
        auth = self.authorize(client)
        answer = auth.answer
        expect(answer.status_code == 303, f"login: HTTP {answer.status_code} {answer.text[:300]}")
        location = auth.location or ""
        expect(location.startswith(client.redirect_uri + "?"), f"Location: {location!r}")
        params = parse_qs(urlsplit(location).query)
        expect(params.get("code"), f"no code in the Location: {location!r}")
        expect(params.get("state") == [auth.state], f"state: {params.get('state')} (sent {auth.state!r})")
        session_cookie = cookie(auth.session, SESSION_COOKIE)
        expect(session_cookie, f"the login set no {SESSION_COOKIE} cookie: {answer.headers.get('Set-Cookie')!r}")
        expect_attributes(session_cookie, path="/")
        return auth

    def exchange(self, auth, url=None, verifier=None):
        return auth.session.fetch_token(
            url or self.token_url,
            authorization_response=auth.location,
            state=auth.state,  # authlib checks the Location's state against it
            code_verifier=auth.verifier if verifier is None else verifier,
        )

    def echo(self, access_token):
        with requests.Session() as plain:
            plain.trust_env = False
            return plain.get(self.issuer + "/echo/code-flow",
                             headers={"Authorization": f"Bearer {access_token}"},
                             verify=self.ca, timeout=TIMEOUT)

    def expect_tokens(self, token, client):
        expect(token.get("token_type", "").lower() == "bearer", f"token_type: {token}")
        expect(token.get("access_token"), f"no access_token: {token}")
        expect(token.get("refresh_token"), f"no refresh_token: {token}")
        claims = jwt.decode(token["access_token"], options={"verify_signature": False})
        expect(claims.get("sub") == str(self.args.user_id), f"sub: {claims}")
        expect(claims.get("aud") in (client.id, [client.id]), f"aud: {claims}")
        response = self.echo(token["access_token"])
        expect(response.status_code == 200, f"/echo: HTTP {response.status_code} {response.text}")
        user_id = response.json()["headers"].get("user_id")
        expect(user_id == str(self.args.user_id), f"/echo user_id: {user_id!r}")

    # --- checks ----------------------------------------------------------------------------

    def full_flow(self, client):
        def check():
            auth = self.code_response(client)
            token = self.exchange(auth)
            self.expect_tokens(token, client)
            # The refresh token works for this client too (public: client_id in the body).
            refreshed = auth.session.refresh_token(self.token_url, refresh_token=token["refresh_token"])
            expect(refreshed.get("access_token") and refreshed.get("refresh_token"), f"refresh: {refreshed}")
        return check

    def seed_endpoint(self):
        # Seed 003's /oauth2/authorize takes the same token request.
        auth = self.code_response(self.confidential)
        self.expect_tokens(self.exchange(auth, url=self.issuer + "/oauth2/authorize"), self.confidential)

    def wrong_verifier(self, client):
        def check():
            auth = self.code_response(client)
            wrong = generate_token(48)
            expect_oauth_error("invalid_grant", lambda: self.exchange(auth, verifier=wrong))
            # The failure burnt the code: the right verifier is too late now.
            expect_oauth_error("invalid_grant", lambda: self.exchange(auth))
        return check

    def code_reuse(self):
        auth = self.code_response(self.confidential)
        token = self.exchange(auth)
        expect(self.echo(token["access_token"]).status_code == 200, "/echo refused the first token")
        expect_oauth_error("invalid_grant", lambda: self.exchange(auth))

    def code_reuse_revokes(self):
        # RFC 6749 §4.1.2: on a second use the server SHOULD revoke the tokens already issued
        # on that code (the gateway says it does: src/grant/code.rs).
        auth = self.code_response(self.confidential)
        token = self.exchange(auth)
        expect_oauth_error("invalid_grant", lambda: self.exchange(auth))
        refused = self.echo(token["access_token"])
        expect(refused.status_code == 401, f"/echo with the first use's token: HTTP {refused.status_code}")
        expect_oauth_error(
            "invalid_grant",
            lambda: self.session(self.confidential).refresh_token(
                self.token_url, refresh_token=token["refresh_token"]),
        )

    def wrong_password(self):
        auth = self.authorize(self.confidential, password=self.args.user_password + " typo")
        answer = auth.answer
        expect(answer.status_code == 400, f"HTTP {answer.status_code} (expected 400)")
        expect("Location" not in answer.headers, f"a wrong password redirected to {auth.location!r}")
        expect(answer.headers.get("Content-Type", "").startswith("text/html"),
               f"Content-Type: {answer.headers.get('Content-Type')!r}")
        again = login_form(answer.text)
        expect(dict(again.hidden()) == dict(auth.form.hidden()),
               f"the re-rendered form carries other hidden fields: {again.hidden()}")
        expect(dict(again.fields).get("username") == self.args.user, "the login name was not kept")
        expect(dict(again.fields).get("password", "") == "", "the password was echoed back")
        expect(not cookie(auth.session, SESSION_COOKIE), "a wrong password started a session")

    def run(self):
        return run_checks([
            ("code flow + PKCE, confidential client (client_secret_basic): tokens, /echo, refresh",
             self.full_flow(self.confidential)),
            ("code flow + PKCE, public client (auth method none): tokens, /echo, refresh",
             self.full_flow(self.public)),
            ("code flow: code exchanged at the seed endpoint /oauth2/authorize", self.seed_endpoint),
            ("code flow: wrong code_verifier is invalid_grant (confidential)", self.wrong_verifier(self.confidential)),
            ("code flow: wrong code_verifier is invalid_grant (public)", self.wrong_verifier(self.public)),
            ("code flow: a reused code is invalid_grant", self.code_reuse),
            ("code flow: a reused code revokes the first use's tokens (RFC 6749 §4.1.2)", self.code_reuse_revokes),
            ("code flow: wrong password re-renders the form (400, no Location)", self.wrong_password),
        ])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issuer", required=True, help="the gateway's issuer, e.g. https://127.0.0.1:8443")
    parser.add_argument("--ca", required=True, help="PEM certificate to trust (the dev certificate)")
    parser.add_argument("--code-client-id", required=True, help="a confidential authorization_code client")
    parser.add_argument("--code-client-secret", required=True)
    parser.add_argument("--public-client-id", required=True, help="a public authorization_code client")
    parser.add_argument("--redirect-uri", required=True, help="registered for both clients")
    parser.add_argument("--user", required=True, help="a user's login name")
    parser.add_argument("--user-id", type=int, required=True)
    parser.add_argument("--user-password", required=True)
    args = parser.parse_args()
    return CodeFlow(args).run()


if __name__ == "__main__":
    sys.exit(main())
