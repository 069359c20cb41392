#!/usr/bin/env python3
"""Third-party interop checks against a running authgate.

Proves that clients we did not write understand the gateway:
  * authlib's OAuth2Session completes the password, client credentials, refresh (with rotation
    and reuse detection), token exchange (RFC 8693) and revocation (RFC 7009) flows, and reads
    introspection (RFC 7662) answers;
  * the `/echo` route takes authlib's tokens as `Authorization: Bearer` and refuses revoked ones;
  * PyJWT's PyJWKClient fetches /.well-known/jwks.json and verifies our access tokens (ES256,
    `typ` at+jwt, `aud` = client id, `iss` = issuer), and refuses a tampered signature;
  * the RFC 8414 metadata names the configured issuer whatever the request's Host header.

Each check prints PASS or FAIL; the exit status is non-zero when any check fails.
Normally started by tests/interop/run.sh, which starts the gateway and registers the users and
the client passed here on the command line (see `--help`).
"""

import argparse
import base64
import ssl
import sys
import traceback

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client import OAuthError

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
TIMEOUT = 10


class CheckFailed(AssertionError):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_oauth_error(code, call):
    """`call()` must raise authlib's OAuthError with this RFC 6749 §5.2 error code."""
    try:
        result = call()
    except OAuthError as error:
        expect(error.error == code, f"expected error {code!r}, got {error.error!r} ({error.description})")
        return error
    raise CheckFailed(f"expected error {code!r}, but the request succeeded: {result!r}")


class Interop:
    def __init__(self, args):
        self.args = args
        self.issuer = args.issuer.rstrip("/")
        self.ca = args.ca
        self.token_url = self.issuer + "/oauth2/token"
        self.revoke_url = self.issuer + "/oauth2/revoke"
        self.introspect_url = self.issuer + "/oauth2/introspect"
        self.passed = []
        self.failed = []

    # --- helpers ---------------------------------------------------------------------------

    def session(self, auth_method="client_secret_basic", client=None, **kwargs):
        """A fresh authlib session for a confidential client (default: the main one, `web`),
        trusting the dev certificate."""
        client_id, client_secret = client or (self.args.client_id, self.args.client_secret)
        return OAuth2Session(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=auth_method,
            revocation_endpoint_auth_method=auth_method,
            verify=self.ca,
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify`
            # (psf/requests#3829); the dev certificate must win, and localhost needs no proxy.
            trust_env=False,
            default_timeout=TIMEOUT,
            **kwargs,
        )

    def password_token(self, username, password, **kwargs):
        return self.session().fetch_token(
            self.token_url, grant_type="password", username=username, password=password, **kwargs
        )

    def user_token(self, **kwargs):
        return self.password_token(self.args.user, self.args.user_password, **kwargs)

    def admin_token(self):
        return self.password_token(self.args.admin, self.args.admin_password)

    def introspect(self, token, hint=None):
        response = self.session().introspect_token(
            self.introspect_url, token=token, token_type_hint=hint
        )
        expect(response.status_code == 200, f"introspection: HTTP {response.status_code} {response.text}")
        return response.json()

    def echo(self, access_token):
        return requests.get(
            self.issuer + "/echo/interop",
            headers={"Authorization": f"Bearer {access_token}"},
            verify=self.ca,
            timeout=TIMEOUT,
        )

    def claims(self, token):
        return jwt.decode(token, options={"verify_signature": False})

    def check(self, name, function):
        try:
            function()
        except CheckFailed as error:
            self.failed.append(name)
            print(f"FAIL {name}: {error}", flush=True)
        except Exception as error:  # an unexpected exception is a failure with its trace
            self.failed.append(name)
            print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
        else:
            self.passed.append(name)
            print(f"PASS {name}", flush=True)

    # --- checks ----------------------------------------------------------------------------

    def password_grant_token_endpoint(self):
        seen = []
        session = self.session()
        session.register_compliance_hook("access_token_response", lambda resp: seen.append(resp) or resp)
        token = session.fetch_token(
            self.token_url, grant_type="password",
            username=self.args.user, password=self.args.user_password,
        )
        expect(seen and seen[0].headers.get("Cache-Control") == "no-store",
               "RFC 6749 §5.1: the token response must carry Cache-Control: no-store")
        expect(token.get("token_type", "").lower() == "bearer", f"token_type: {token}")
        expect(token.get("access_token") and token.get("refresh_token"), f"tokens missing: {token}")
        expect(isinstance(token.get("expires_in"), int) and token["expires_in"] > 0, f"expires_in: {token}")
        expect(token.get("expires_at"), "authlib computed no expires_at")
        expect(self.claims(token["access_token"])["sub"] == str(self.args.user_id), "sub is not the user id")

    def password_grant_seed_endpoint_client_secret_post(self):
        session = self.session("client_secret_post")
        token = session.fetch_token(
            self.issuer + "/oauth2/password",
            grant_type="password",
            username=self.args.user,
            password=self.args.user_password,
        )
        expect(token.get("access_token") and token.get("refresh_token"), f"tokens missing: {token}")
        expect(self.claims(token["access_token"])["sub"] == str(self.args.user_id), "sub is not the user id")
        # A seed endpoint serves its one grant; another is unsupported_grant_type.
        expect_oauth_error(
            "unsupported_grant_type",
            lambda: session.fetch_token(self.issuer + "/oauth2/password", grant_type="client_credentials"),
        )

    def password_grant_wrong_password(self):
        expect_oauth_error(
            "invalid_grant",
            lambda: self.password_token(self.args.user, self.args.user_password + " typo"),
        )

    def password_grant_wrong_client_secret(self):
        session = OAuth2Session(
            client_id=self.args.client_id,
            client_secret="not-the-secret",
            verify=self.ca,
            trust_env=False,
            default_timeout=TIMEOUT,
        )
        seen = []
        session.register_compliance_hook("access_token_response", lambda resp: seen.append(resp) or resp)
        expect_oauth_error(
            "invalid_client",
            lambda: session.fetch_token(
                self.token_url,
                grant_type="password",
                username=self.args.user,
                password=self.args.user_password,
            ),
        )
        # RFC 6749 §5.2: Basic authentication failed → 401 with a matching challenge.
        expect(seen[0].status_code == 401, f"HTTP {seen[0].status_code}")
        expect(seen[0].headers.get("WWW-Authenticate", "").lower().startswith("basic"),
               f"WWW-Authenticate: {seen[0].headers.get('WWW-Authenticate')!r}")

    def client_credentials(self, path):
        def run():
            token = self.session().fetch_token(
                self.issuer + path, grant_type="client_credentials", scope="read"
            )
            expect(token.get("access_token"), f"no access_token: {token}")
            expect("refresh_token" not in token, f"client_credentials returned a refresh_token: {token}")
            expect(token.get("scope") == "read", f"scope: {token.get('scope')!r}")
            active = self.introspect(token["access_token"])
            expect(active.get("active") is True, f"introspection: {active}")
            expect(active.get("client_id") == self.args.client_id, f"introspection client_id: {active}")

        return run

    def resource_indicators(self):
        """RFC 8707: authlib sends `resource`; the token's `aud` is exactly the resources; one
        the client may not use is invalid_target. (authlib's fetch_token folds repeated
        parameters into one, so two resources go through plain requests.)"""
        svc = (self.args.svc_client_id, self.args.svc_client_secret)
        orders, billing = "https://api.example/orders", "https://api.example/billing"
        response = requests.post(
            self.token_url,
            data=[("grant_type", "client_credentials"), ("resource", orders), ("resource", billing)],
            auth=svc,
            verify=self.ca,
            timeout=TIMEOUT,
        )
        expect(response.status_code == 200, f"HTTP {response.status_code} {response.text}")
        aud = self.claims(response.json()["access_token"])["aud"]
        expect(aud == [orders, billing], f"aud: {aud!r}")
        token = self.session(client=svc).fetch_token(
            self.token_url, grant_type="client_credentials", resource=billing
        )
        aud = self.claims(token["access_token"])["aud"]
        expect(aud == [billing], f"aud: {aud!r}")
        introspected = self.introspect(token["access_token"])
        expect(introspected.get("aud") == [billing], f"introspection aud: {introspected}")
        expect_oauth_error(
            "invalid_target",
            lambda: self.session(client=svc).fetch_token(
                self.token_url, grant_type="client_credentials", resource="https://api.example/payroll"
            ),
        )

    def machine_client_generated_secret(self):
        svc = (self.args.svc_client_id, self.args.svc_client_secret)
        for method in ("client_secret_basic", "client_secret_post"):
            token = self.session(method, client=svc).fetch_token(self.token_url, grant_type="client_credentials")
            expect("refresh_token" not in token, f"client_credentials returned a refresh_token: {token}")
            expect(token.get("scope") == "read", f"scope: {token.get('scope')!r}")
            claims = self.claims(token["access_token"])
            expect(claims.get("client_id") in (None, self.args.svc_client_id), f"client_id claim: {claims}")
        # A grant the client is not registered for is unauthorized_client (RFC 6749 §5.2).
        expect_oauth_error(
            "unauthorized_client",
            lambda: self.session(client=svc).fetch_token(
                self.token_url, grant_type="password",
                username=self.args.user, password=self.args.user_password,
            ),
        )
        admin = self.admin_token()
        expect_oauth_error(
            "unauthorized_client",
            lambda: self.session(client=svc).fetch_token(
                self.token_url,
                grant_type=TOKEN_EXCHANGE,
                subject_token=admin["access_token"],
                subject_token_type=ACCESS_TOKEN_TYPE,
                requested_subject=str(self.args.user_id),
            ),
        )

    def refresh_rotates_and_detects_reuse(self):
        session = self.session()
        first = dict(session.fetch_token(
            self.token_url, grant_type="password",
            username=self.args.user, password=self.args.user_password,
        ))
        old_refresh = first["refresh_token"]
        second = dict(session.refresh_token(self.token_url, refresh_token=old_refresh))
        new_refresh = second.get("refresh_token")
        expect(new_refresh and new_refresh != old_refresh, "the refresh token did not rotate")
        expect(second["access_token"] != first["access_token"], "the access token did not change")
        expect(self.claims(second["access_token"])["sub"] == str(self.args.user_id), "sub changed on refresh")
        # Replaying the rotated-out token is refused, and revokes the whole family (RFC 6819
        # §5.2.2.3, OAuth 2.0 Security BCP §4.14): the new refresh token stops working too.
        expect_oauth_error(
            "invalid_grant",
            lambda: self.session().refresh_token(self.token_url, refresh_token=old_refresh),
        )
        expect_oauth_error(
            "invalid_grant",
            lambda: self.session().refresh_token(self.token_url, refresh_token=new_refresh),
        )

    def refresh_seed_endpoint(self):
        first = self.user_token()
        session = self.session("client_secret_post")
        second = session.refresh_token(
            self.issuer + "/oauth2/refresh-token", refresh_token=first["refresh_token"]
        )
        expect(second.get("refresh_token") not in (None, first["refresh_token"]), "no rotation")

    def refresh_narrows_scope(self):
        first = self.user_token()
        expect(first.get("scope") == "read write", f"default scope: {first.get('scope')!r}")
        second = self.session().refresh_token(
            self.token_url, refresh_token=first["refresh_token"], scope="read"
        )
        expect(second.get("scope") == "read", f"narrowed scope: {second.get('scope')!r}")
        expect(self.claims(second["access_token"]).get("scope") in ("read", ["read"]),
               "the access token's scope claim was not narrowed")

    def token_exchange(self):
        admin = self.admin_token()
        session = self.session()
        token = session.fetch_token(
            self.token_url,
            grant_type=TOKEN_EXCHANGE,
            subject_token=admin["access_token"],
            subject_token_type=ACCESS_TOKEN_TYPE,
            requested_subject=str(self.args.user_id),
        )
        expect(token.get("issued_token_type") == ACCESS_TOKEN_TYPE, f"issued_token_type: {token}")
        expect(token.get("token_type", "").lower() == "bearer", f"token_type: {token}")
        expect("refresh_token" not in token, f"an exchange returned a refresh_token: {token}")
        claims = self.claims(token["access_token"])
        expect(claims.get("sub") == str(self.args.user_id), f"sub: {claims.get('sub')!r}")
        expect(claims.get("act") == {"sub": str(self.args.admin_id)}, f"act: {claims.get('act')!r}")
        # The gateway takes the exchanged token and forwards the user's identity.
        response = self.echo(token["access_token"])
        expect(response.status_code == 200, f"/echo: HTTP {response.status_code} {response.text}")
        headers = response.json()["headers"]
        expect(headers.get("user_id") == str(self.args.user_id), f"/echo user_id: {headers}")

    def token_exchange_marks_impersonator_upstream(self):
        # An exchanged token is an admin acting as the user (`act`), just like an admin token
        # plus a `user_id` header; upstreams should see the admin in X-Impersonator-Id then too.
        admin = self.admin_token()
        token = self.session().fetch_token(
            self.token_url,
            grant_type=TOKEN_EXCHANGE,
            subject_token=admin["access_token"],
            subject_token_type=ACCESS_TOKEN_TYPE,
            requested_subject=str(self.args.user_id),
        )
        headers = self.echo(token["access_token"]).json()["headers"]
        expect(headers.get("user_id") == str(self.args.user_id), f"/echo user_id: {headers}")
        expect(headers.get("x-impersonator-id") == str(self.args.admin_id),
               f"no x-impersonator-id for a token with act={{sub: {self.args.admin_id}}}; upstream saw {headers}")

    def token_exchange_own_id_other_group(self):
        # Seed 002: an admin may act as the admin of another group: requested_subject is the
        # admin's own id plus `group_id`. Still an RFC 8693 response: issued_token_type is
        # REQUIRED there (§2.2.1), whoever the token is for.
        admin = self.admin_token()
        token = self.session().fetch_token(
            self.token_url,
            grant_type=TOKEN_EXCHANGE,
            subject_token=admin["access_token"],
            subject_token_type=ACCESS_TOKEN_TYPE,
            requested_subject=str(self.args.admin_id),
            group_id="7",
        )
        claims = self.claims(token["access_token"])
        expect(claims.get("sub") == str(self.args.admin_id), f"sub: {claims}")
        expect(str(claims.get("gid")) == "7", f"gid: {claims}")
        expect(token.get("issued_token_type") == ACCESS_TOKEN_TYPE,
               f"RFC 8693 §2.2.1: issued_token_type is REQUIRED; response keys: {sorted(token)}")

    def token_exchange_for_another_admin(self):
        admin = self.admin_token()
        expect_oauth_error(
            "invalid_grant",
            lambda: self.session().fetch_token(
                self.token_url,
                grant_type=TOKEN_EXCHANGE,
                subject_token=admin["access_token"],
                subject_token_type=ACCESS_TOKEN_TYPE,
                requested_subject=str(self.args.other_admin_id),
            ),
        )

    def token_exchange_by_non_admin(self):
        user = self.user_token()
        expect_oauth_error(
            "invalid_grant",
            lambda: self.session().fetch_token(
                self.token_url,
                grant_type=TOKEN_EXCHANGE,
                subject_token=user["access_token"],
                subject_token_type=ACCESS_TOKEN_TYPE,
                requested_subject=str(self.args.user_id),  # even for themselves
            ),
        )

    def revoke_refresh_token(self):
        token = self.user_token()
        response = self.session().revoke_token(
            self.revoke_url, token=token["refresh_token"], token_type_hint="refresh_token"
        )
        expect(response.status_code == 200, f"revoke: HTTP {response.status_code} {response.text}")
        expect(self.introspect(token["refresh_token"]) == {"active": False}, "revoked refresh token is active")
        expect_oauth_error(
            "invalid_grant",
            lambda: self.session().refresh_token(self.token_url, refresh_token=token["refresh_token"]),
        )

    def revoke_access_token(self):
        revoked = self.user_token(scope="read")
        live = self.user_token(scope="read")

        active = self.introspect(revoked["access_token"], hint="access_token")
        expect(active.get("active") is True, f"before revocation: {active}")
        expect(active.get("sub") == str(self.args.user_id), f"sub: {active}")
        expect(active.get("client_id") == self.args.client_id, f"client_id: {active}")
        expect(active.get("scope") == "read", f"scope: {active}")
        expect(self.echo(revoked["access_token"]).status_code == 200, "/echo refused a fresh token")

        response = self.session().revoke_token(
            self.revoke_url, token=revoked["access_token"], token_type_hint="access_token"
        )
        expect(response.status_code == 200, f"revoke: HTTP {response.status_code} {response.text}")
        expect(self.introspect(revoked["access_token"]) == {"active": False}, "revoked access token is active")

        # The instance that revoked refuses the token at once; other tokens keep working.
        refused = self.echo(revoked["access_token"])
        expect(refused.status_code == 401, f"/echo with a revoked token: HTTP {refused.status_code} {refused.text}")
        expect("bearer" in refused.headers.get("WWW-Authenticate", "").lower(), f"no Bearer challenge: {refused.headers}")
        accepted = self.echo(live["access_token"])
        expect(accepted.status_code == 200, f"/echo with a live token: HTTP {accepted.status_code} {accepted.text}")
        expect(accepted.json()["headers"].get("user_id") == str(self.args.user_id), "/echo user_id header")
        expect(self.introspect(live["access_token"]).get("active") is True, "the other token went inactive")

    def revoke_with_wrong_hint(self):
        token = self.user_token()
        self.session().revoke_token(self.revoke_url, token=token["access_token"], token_type_hint="refresh_token")
        self.session().revoke_token(self.revoke_url, token=token["refresh_token"], token_type_hint="access_token")
        expect(self.introspect(token["access_token"]) == {"active": False}, "access token still active")
        expect(self.introspect(token["refresh_token"]) == {"active": False}, "refresh token still active")
        expect(self.echo(token["access_token"]).status_code == 401, "/echo took the revoked access token")

    def revoke_by_another_client(self):
        # RFC 7009 §2.1: the server checks the token was issued to the client asking; another
        # client's request must leave it alone (whatever the status code says).
        token = self.user_token()
        svc = (self.args.svc_client_id, self.args.svc_client_secret)
        for kind in ("access_token", "refresh_token"):
            self.session(client=svc).revoke_token(self.revoke_url, token=token[kind], token_type_hint=kind)
            expect(self.introspect(token[kind]).get("active") is True, f"another client revoked our {kind}")
        expect(self.echo(token["access_token"]).status_code == 200, "/echo refused the token")

    def revoke_unknown_token(self):
        response = self.session("client_secret_post").revoke_token(self.revoke_url, token="no-such-token")
        expect(response.status_code == 200, f"RFC 7009 §2.2 wants 200, got HTTP {response.status_code}")

    def echo_without_token(self):
        response = requests.get(self.issuer + "/echo", verify=self.ca, timeout=TIMEOUT)
        expect(response.status_code == 401, f"HTTP {response.status_code}")

    def pyjwt_verifies_with_jwks(self):
        token = self.user_token()["access_token"]
        header = jwt.get_unverified_header(token)
        expect(header.get("typ") == "at+jwt", f"typ: {header.get('typ')!r}")
        expect(header.get("alg") == "ES256", f"alg: {header.get('alg')!r}")
        expect(header.get("kid"), "no kid")

        context = ssl.create_default_context(cafile=self.ca)
        client = jwt.PyJWKClient(self.issuer + "/.well-known/jwks.json", ssl_context=context, timeout=TIMEOUT)
        expect(client.get_signing_keys(), "the JWKS has no signing keys")
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["ES256"],
            audience=self.args.client_id,
            issuer=self.issuer,
            options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
        )
        expect(claims["sub"] == str(self.args.user_id), f"sub: {claims}")

        # One flipped bit in the signature: PyJWT must refuse it.
        head, payload, signature = token.split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        raw[len(raw) // 2] ^= 0x01
        tampered = ".".join([head, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])
        try:
            jwt.decode(tampered, key.key, algorithms=["ES256"], audience=self.args.client_id, issuer=self.issuer)
        except jwt.InvalidSignatureError:
            pass
        else:
            raise CheckFailed("a tampered signature verified")
        # ...and so must the gateway.
        refused = self.echo(tampered)
        expect(refused.status_code == 401, f"/echo with a tampered token: HTTP {refused.status_code}")

    def metadata_names_configured_issuer(self):
        url = self.issuer + "/.well-known/oauth-authorization-server"
        for host in (None, "evil.example.com", "127.0.0.1:1"):
            headers = {"Host": host} if host else {}
            response = requests.get(url, headers=headers, verify=self.ca, timeout=TIMEOUT)
            expect(response.status_code == 200, f"Host {host}: HTTP {response.status_code}")
            metadata = response.json()
            expect(metadata.get("issuer") == self.issuer, f"Host {host}: issuer {metadata.get('issuer')!r}")
            expect(metadata.get("token_endpoint") == self.token_url, f"token_endpoint: {metadata}")
            expect(metadata.get("jwks_uri") == self.issuer + "/.well-known/jwks.json", f"jwks_uri: {metadata}")
            expect(metadata.get("revocation_endpoint") == self.revoke_url, f"revocation_endpoint: {metadata}")
            expect(metadata.get("introspection_endpoint") == self.introspect_url, f"introspection_endpoint: {metadata}")
            expect(TOKEN_EXCHANGE in metadata.get("grant_types_supported", []), "no token exchange")

    def run(self):
        checks = [
            ("metadata: issuer is the configured one whatever the Host header", self.metadata_names_configured_issuer),
            ("password grant at /oauth2/token (client_secret_basic)", self.password_grant_token_endpoint),
            ("RFC 8707: resource parameters address the token (aud), invalid_target", self.resource_indicators),
            ("password grant at /oauth2/password (client_secret_post)", self.password_grant_seed_endpoint_client_secret_post),
            ("password grant: wrong password is invalid_grant", self.password_grant_wrong_password),
            ("password grant: wrong client secret is invalid_client", self.password_grant_wrong_client_secret),
            ("client_credentials at /oauth2/token, no refresh token", self.client_credentials("/oauth2/token")),
            ("client_credentials at /oauth2/client-credentials, no refresh token", self.client_credentials("/oauth2/client-credentials")),
            ("client with a CLI-generated secret: client_credentials; other grants unauthorized_client", self.machine_client_generated_secret),
            ("refresh: rotation, reuse is invalid_grant and revokes the family", self.refresh_rotates_and_detects_reuse),
            ("refresh at /oauth2/refresh-token (client_secret_post)", self.refresh_seed_endpoint),
            ("refresh: scope narrows", self.refresh_narrows_scope),
            ("token exchange: admin acts as user (sub, act, issued_token_type, /echo)", self.token_exchange),
            ("token exchange: /echo shows the admin in X-Impersonator-Id", self.token_exchange_marks_impersonator_upstream),
            ("token exchange: admin's own id with group_id (issued_token_type)", self.token_exchange_own_id_other_group),
            ("token exchange: another admin is invalid_grant", self.token_exchange_for_another_admin),
            ("token exchange: a non-admin subject token is invalid_grant", self.token_exchange_by_non_admin),
            ("revoke refresh token: refreshing fails afterwards", self.revoke_refresh_token),
            ("revoke access token: introspection inactive, /echo 401, others unaffected", self.revoke_access_token),
            ("revoke with the wrong token_type_hint still revokes (RFC 7009 §2.1)", self.revoke_with_wrong_hint),
            ("revoke by another client leaves the tokens alone (RFC 7009 §2.1)", self.revoke_by_another_client),
            ("revoke an unknown token: 200", self.revoke_unknown_token),
            ("/echo without a token: 401", self.echo_without_token),
            ("PyJWT: PyJWKClient + jwt.decode verify an access token; tampering fails", self.pyjwt_verifies_with_jwks),
        ]
        for name, function in checks:
            self.check(name, function)
        print(f"{len(self.passed)} passed, {len(self.failed)} failed", flush=True)
        return 1 if self.failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issuer", required=True, help="the gateway's issuer, e.g. https://127.0.0.1:8443")
    parser.add_argument("--ca", required=True, help="PEM certificate to trust (the dev certificate)")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--user", required=True, help="a non-admin user's login name")
    parser.add_argument("--user-id", type=int, required=True)
    parser.add_argument("--user-password", required=True)
    parser.add_argument("--admin", required=True, help="an admin's login name")
    parser.add_argument("--admin-id", type=int, required=True)
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--other-admin-id", type=int, required=True, help="another admin's id")
    parser.add_argument("--svc-client-id", required=True, help="a client_credentials-only client")
    parser.add_argument("--svc-client-secret", required=True, help="its CLI-generated secret")
    args = parser.parse_args()
    print(f"authlib {__import__('authlib').__version__}, PyJWT {jwt.__version__}, "
          f"requests {requests.__version__}; gateway {args.issuer}", flush=True)
    return Interop(args).run()


if __name__ == "__main__":
    sys.exit(main())
