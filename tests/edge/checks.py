"""Checks through nginx running deploy/nginx/authgate-forward-auth.conf (started by run.sh).

Every request goes to nginx (EDGE_BASE, HTTPS) with a unique X-Check header; the app behind
nginx (app.py) records what it receives in EDGE_RECORDS, so each check can say what reached the
app and what never did. authgate (AUTHGATE_DIRECT) is asked directly too, to compare what the
app got with what authgate decided.

The users (run.sh): alice (id 100, group 7), bob (101, group 8), boss (1, group 1, admin); their
tokens in EDGE_TOKENS/token-<name>. The routes: /pub public, /pub/secret and /api a bearer
token, /app a browser session (auth = "session"); all upstream = "none".

Prints PASS/FAIL per check and a summary; exits 1 on any failure.
"""

import http.client
import json
import os
import ssl
import sys
import traceback
import uuid
from urllib.parse import urlsplit

BASE = urlsplit(os.environ["EDGE_BASE"])
DIRECT = urlsplit(os.environ["AUTHGATE_DIRECT"])
RECORDS = os.environ["EDGE_RECORDS"]
TOKENS = {
    name: open(os.path.join(os.environ["EDGE_TOKENS"], f"token-{name}")).read().strip()
    for name in ("alice", "bob", "boss")
}
ALICE = [("user_id", "100"), ("group_id", "7")]
BOB = [("user_id", "101"), ("group_id", "8")]
BOSS = [("user_id", "1"), ("group_id", "1")]
SESSION_COOKIE = "__Host-authgate-session"
SESSION_SECRET = "c2Vzc2lvbi12YWx1ZS1zZWNyZXQ"
CONTEXT = ssl.create_default_context(cafile=os.environ["EDGE_CA"])


def loose(name):
    """authgate's loose form of a header name (proxy/headers.rs): lower case, letters and
    digits only, leading x's dropped. `User_Id`, `user.id`, `X-X-User-Id` are all `userid`."""
    kept = "".join(c for c in name.lower() if c.isascii() and c.isalnum())
    return kept.lstrip("x")


# The identity headers of [identity] (user, group, impersonator, client, assertion): at the
# app, a header with one of these loose forms must be exactly what authgate decided.
IDENTITY = {loose(n) for n in ("user_id", "group_id", "X-Impersonator-Id", "X-Client-Id",
                               "X-Authgate-Assertion")}


def spellings(base):
    """The spellings of `<base>_id` a client may send and an upstream may read: with and
    without an x- or x_ prefix, `-`, `_` or nothing before `id`."""
    return [f"{prefix}{base}{sep}id" for prefix in ("", "x-", "x_") for sep in ("-", "_", "")]


IDENTITY_SPELLINGS = (
    [s for base in ("user", "group", "impersonator", "client") for s in spellings(base)]
    + ["User-Id", "USER_ID", "X-User-Id", "X_User_Id", "UserId", "USERID", "Group-Id",
       "GROUP_ID", "X-Group-Id", "GroupId", "X-Impersonator-Id", "X-IMPERSONATOR-ID",
       "X-Client-Id", "X-Authgate-Assertion"]
    # Names nginx drops as invalid (ignore_invalid_headers on): never forwarded.
    + ["user.id", "group.id", "x.user.id"]
)
# authgate reads these as a request to act for someone (http/names.rs: `_` and `-` alike, one
# x- prefix optional): a non-admin naming another user or group is refused.
READ_AS_IDENTITY = {
    s.lower() for base in ("user", "group") for s in spellings(base) if not s.endswith(f"{base}id")
}
# Headers legacy frameworks trust (re-routing, method overrides, client addresses) and other
# auth proxies' identity headers: the shipped config clears each of these names.
OTHERS = {
    "X-Original-URL": "/pub/secret", "X-Rewrite-URL": "/pub/secret",
    "X-Original-URI": "/pub/secret", "X-Original-Method": "DELETE",
    "X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE", "X-Method-Override": "DELETE",
    "Remote-User": "mallory", "Remote_User": "mallory", "Remote-Groups": "admins",
    "Remote-Email": "m@evil.example", "Remote-Name": "mallory", "X-Remote-User": "mallory",
    "X-User": "mallory", "X-Group": "admins", "X-Forwarded-User": "mallory",
    "X-Forwarded-Email": "m@evil.example", "X-Forwarded-Groups": "admins",
    "X-Forwarded-Preferred-Username": "mallory", "X-Auth-Request-User": "mallory",
    "X-Auth-Request-Email": "m@evil.example", "X-Auth-Request-Groups": "admins",
    "X-Auth-Request-Preferred-Username": "mallory", "X-WEBAUTH-USER": "mallory",
    "X-Authenticated-User": "mallory", "X-Authenticated-Userid": "mallory",
    "X-Consumer-Username": "mallory", "X-MS-CLIENT-PRINCIPAL-NAME": "mallory",
    "X-MS-CLIENT-PRINCIPAL-ID": "mallory", "X-Goog-Authenticated-User-Email": "m@evil.example",
    "X-Amzn-Oidc-Identity": "mallory", "Cf-Access-Authenticated-User-Email": "m@evil.example",
    "X-Forwarded-Client-Cert": "By=spiffe://evil", "X-SSL-Client-Cert": "-----BEGIN",
    "True-Client-IP": "10.6.6.6", "X-Client-IP": "10.6.6.6", "Client-IP": "10.6.6.6",
    "CF-Connecting-IP": "10.6.6.6", "Forwarded": "for=10.6.6.6",
}
# Set by nginx from the connection, whatever the client sent.
EDGE_SET = {"x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1", "x-forwarded-proto": "https",
            "x-forwarded-host": BASE.netloc}
SPOOFED_EDGE = [("X-Forwarded-For", "10.6.6.6"), ("X-Real-IP", "10.6.6.6"),
                ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "evil.example")]


# --- requests and what the app recorded ---------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body, records):
        self.status = status
        self.headers = headers  # [(name, value)], lower-case names
        self.body = body
        self.records = records  # what the app received for this request

    def header(self, name):
        values = [v for n, v in self.headers if n == name.lower()]
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"{self.status} {self.headers} {self.body[:300]!r} app got {len(self.records)}"


_offset = 0
_all_records = []  # everything the app received, in order
_connections = {}


def _records(check):
    """The app's records carrying X-Check: `check` (read since the last call)."""
    global _offset
    with open(RECORDS, encoding="utf-8") as f:
        f.seek(_offset)
        text = f.read()
        _offset = f.tell()
    found = []
    for line in text.splitlines():
        record = json.loads(line)
        record["lower"] = [(n.lower(), v) for n, v in record["headers"]]
        _all_records.append(record)
        if any(n == "x-check" and v == check for n, v in record["lower"]):
            found.append(record)
    return found


def send(method, target, headers=(), body=None, token=None, at=BASE):
    """One request over a kept-alive connection to nginx (or authgate); the answer and what
    the app received for it."""
    check = uuid.uuid4().hex
    all_headers = list(headers) + [("X-Check", check)]
    if token:
        all_headers.append(("Authorization", f"Bearer {TOKENS[token]}"))
    for attempt in (0, 1):
        conn = _connections.get(at.netloc)
        if conn is None:
            conn = http.client.HTTPSConnection(at.hostname, at.port, context=CONTEXT, timeout=10)
            _connections[at.netloc] = conn
        try:
            skip_host = any(n.lower() == "host" for n, _ in all_headers)
            conn.putrequest(method, target, skip_host=skip_host, skip_accept_encoding=True)
            for name, value in all_headers:
                conn.putheader(name, value)
            data = body.encode() if isinstance(body, str) else body
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            response = conn.getresponse()
            payload = response.read().decode("utf-8", "replace")
            answer_headers = [(n.lower(), v) for n, v in response.getheaders()]
            if response.will_close:
                conn.close()
                del _connections[at.netloc]
            break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # A kept-alive connection the server closed meanwhile: once more on a new one.
            conn.close()
            del _connections[at.netloc]
            if attempt:
                raise
    return Answer(response.status, answer_headers, payload, _records(check))


def decided(target, token=None, headers=(), method="GET"):
    """What authgate itself answers nginx's question about `target` (asked directly)."""
    answer = send("GET", "/_authgate/check", at=DIRECT, token=token, headers=list(headers) + [
        ("X-Original-URI", target), ("X-Original-Method", method), ("Host", BASE.netloc)])
    return answer.status, [(n, v) for n, v in answer.headers if loose(n) in IDENTITY]


# --- assertions ---------------------------------------------------------------------------------

def identity_at_app(record):
    """The identity headers the app received, as sent (name, value)."""
    return [(n, v) for n, v in record["headers"] if loose(n) in IDENTITY]


def reached_once(answer, expected_identity, target=None, method="GET"):
    """200, one request at the app, with exactly `expected_identity` (nothing for a public
    route), the target as sent, and nothing the client spoofed."""
    assert answer.status == 200, answer
    assert len(answer.records) == 1, f"the app got {len(answer.records)} requests: {answer}"
    record = answer.records[0]
    assert record["method"] == method, record["method"]
    if target is not None:
        assert record["target"] == target, f"app target {record['target']!r}, sent {target!r}"
    assert identity_at_app(record) == expected_identity, \
        f"identity at the app: {identity_at_app(record)}, expected {expected_identity}"
    clean(record)
    return record


def cookie_names(value):
    return [part.split("=", 1)[0].strip() for part in value.split(";")]


def clean(record):
    """Nothing at the app the client may not send: no bearer token, no session cookie, no
    spoofed value of what nginx sets, none of the cleared names."""
    names = [n for n, _ in record["lower"]]
    assert "authorization" not in names, "the bearer token reached the app"
    cleared = {o.lower() for o in OTHERS}
    for name, value in record["lower"]:
        if name == "cookie":
            assert SESSION_COOKIE not in cookie_names(value), f"cookie: {value} reached the app"
        if name in EDGE_SET:
            assert value == EDGE_SET[name], f"{name}: {value} (nginx sets {EDGE_SET[name]})"
        assert name not in cleared, f"{name}: {value} reached the app"
    for name in EDGE_SET:
        assert names.count(name) <= 1, f"{name} twice at the app"


def refused(answer, status, error=None):
    assert answer.status == status, answer
    assert answer.records == [], f"the app got the refused request: {answer.records}"
    if error:
        assert answer.json()["error"] == error, answer


# --- the checks ---------------------------------------------------------------------------------

passes = failures = 0


def check(name):
    def run(body):
        global passes, failures
        try:
            body()
            passes += 1
            print(f"PASS {name}", flush=True)
        except Exception:  # noqa: BLE001 (every failure is reported, the next check runs)
            failures += 1
            print(f"FAIL {name}", flush=True)
            print("\n".join("     " + line for line in traceback.format_exc().splitlines()))
        return body
    return run


@check("a bearer token through nginx: the app gets exactly the user_id/group_id authgate decided")
def _():
    for user, identity in (("alice", ALICE), ("bob", BOB), ("boss", BOSS)):
        status, answer = decided("/api/orders?page=2", token=user)
        assert status == 200 and answer == [(n.lower(), v) for n, v in identity], (status, answer)
        a = send("GET", "/api/orders?page=2", token=user, headers=[("Accept", "application/json")])
        reached_once(a, identity, target="/api/orders?page=2")
    # The method and the body get through; the subrequest took neither.
    a = send("POST", "/api/orders", token="alice", body='{"item": 42}',
             headers=[("Content-Type", "application/json")])
    record = reached_once(a, ALICE, target="/api/orders", method="POST")
    assert record["body"] == '{"item": 42}', record["body"]
    big = "x" * 300_000  # more than nginx buffers in memory: the app still gets all of it
    a = send("PUT", "/api/upload", token="bob", body=big, headers=[("Content-Type", "text/plain")])
    record = reached_once(a, BOB, target="/api/upload", method="PUT")
    assert record["body"] == big, len(record["body"])


@check("no token, or an invalid one: 401 JSON with authgate's Bearer challenge, nothing forwarded")
def _():
    for headers in ([], [("Authorization", "Bearer not-a-token")],
                    [("Accept", "application/json")]):
        a = send("GET", "/api/orders", headers=headers)
        refused(a, 401, "unauthorized")
        assert (a.header("www-authenticate") or "").startswith('Bearer realm="authgate"'), a
        assert a.header("location") is None, a
    refused(send("POST", "/api/orders", body="x=1"), 401, "unauthorized")
    # A route nobody configured: authgate says 403, nothing forwarded.
    refused(send("GET", "/nowhere", token="alice"), 403, "forbidden")


@check("spoofed identity headers in every spelling, without a token (public route): none reaches the app")
def _():
    for name in IDENTITY_SPELLINGS:
        a = send("GET", "/pub/hello", headers=[(name, "101")])
        reached_once(a, [], target="/pub/hello")
        assert name.lower() not in {n for n, _ in a.records[0]["lower"]}, f"{name} reached the app"
    for name, value in list(OTHERS.items()) + SPOOFED_EDGE:
        reached_once(send("GET", "/pub/hello", headers=[(name, value)]), [], target="/pub/hello")
    # All at once (the names authgate reads as identity with one value: they must agree).
    every = [(n, "101") for n in IDENTITY_SPELLINGS] + list(OTHERS.items()) + SPOOFED_EDGE
    reached_once(send("GET", "/pub/hello", headers=every), [], target="/pub/hello")


@check("spoofed identity headers in every spelling, with a token: refused (403) or replaced by authgate's")
def _():
    for name in IDENTITY_SPELLINGS:
        a = send("GET", "/api/x", token="alice", headers=[(name, "101")])
        if name.lower() in READ_AS_IDENTITY:
            # A request to act as user/group 101, which only an admin may make.
            refused(a, 403, "forbidden")
        else:
            # Not read as one (authgate as the proxy strips these): the app gets authgate's.
            reached_once(a, ALICE, target="/api/x")
    for name, value in list(OTHERS.items()) + SPOOFED_EDGE:
        reached_once(send("GET", "/api/x", token="alice", headers=[(name, value)]), ALICE)
    every = [(n, "101") for n in IDENTITY_SPELLINGS if n.lower() not in READ_AS_IDENTITY]
    every += list(OTHERS.items()) + SPOOFED_EDGE
    reached_once(send("GET", "/api/x", token="alice", headers=every), ALICE, target="/api/x")
    # Naming oneself is no request to act for anyone: the app gets authgate's headers alone.
    a = send("GET", "/api/x", token="alice", headers=[("user_id", "100"), ("User-Id", "100")])
    reached_once(a, ALICE)


@check("a non-admin's user_id naming another user: 403 (in each spelling authgate reads), nothing forwarded")
def _():
    for name in ("user_id", "User-Id", "X-User-Id", "x_user_id", "group_id", "X-Group-Id"):
        refused(send("GET", "/api/x", token="alice", headers=[(name, "101")]), 403, "forbidden")
        refused(send("GET", "/api/x", token="bob", headers=[(name, "100")]), 403, "forbidden")


@check("an admin's user_id: 200 as that user, X-Impersonator-Id reaches the app")
def _():
    for name in ("user_id", "User-Id", "X-User-Id"):
        status, answer = decided("/api/x", token="boss", headers=[(name, "100")])
        expected = ALICE + [("X-Impersonator-Id", "1")]
        assert status == 200 and answer == [(n.lower(), v) for n, v in expected], (status, answer)
        a = send("GET", "/api/x", token="boss", headers=[(name, "100")])
        reached_once(a, expected, target="/api/x")
    # Spoofing the impersonator header itself changes nothing.
    a = send("GET", "/api/x", token="boss", headers=[("user_id", "100"),
                                                     ("x_impersonator_id", "101")])
    reached_once(a, ALICE + [("X-Impersonator-Id", "1")])


@check("path readings through nginx: /pub is public, every reading of /pub/secret needs a token")
def _():
    reached_once(send("GET", "/pub/hello"), [], target="/pub/hello")
    for target in ("/pub/secret", "/pub/secret;x", "/pub/SECRET", "/pub/Secret/x",
                   "/pub/secret.json", "/pub/a/../secret", "/pub/%73ecret", "/pub//secret",
                   "/pub/./secret", "/pub/secret/", "/pub/secret?x=/pub/hello"):
        a = send("GET", target)
        assert a.status == 401, f"{target}: {a}"
        assert a.records == [], f"{target} reached the app: {a.records}"
    # A reading authgate refuses as ambiguous (400) becomes nginx's 500 (auth_request passes on
    # only 2xx, 401 and 403): closed all the same.
    for target in ("/pub/%5csecret", "/pub/x%2Fsecret"):
        a = send("GET", target)
        assert a.status == 500 and a.records == [], f"{target}: {a}"
    # With a token, the app gets the target exactly as sent: the one authgate judged.
    for target in ("/pub/secret;x", "/pub/SECRET", "/pub/a/../secret?q=%2F&r=1"):
        reached_once(send("GET", target, token="alice"), ALICE, target=target)
    reached_once(send("GET", "/pub/a%20b/../hello?q=%2F"), [], target="/pub/a%20b/../hello?q=%2F")


@check("the original request is nginx's: client-sent X-Forwarded-Uri/-Method/-Host, X-Original-* change nothing")
def _():
    a = send("GET", "/pub/secret", headers=[("X-Forwarded-Uri", "/pub/hello"),
                                            ("X-Forwarded-Method", "GET"),
                                            ("X-Forwarded-Host", "other.example")])
    refused(a, 401, "unauthorized")
    refused(send("GET", "/pub/secret", headers=[("X-Original-URI", "/pub/hello")]), 401)
    reached_once(send("GET", "/pub/hello", headers=[("X-Original-URI", "/pub/secret")]), [],
                 target="/pub/hello")
    # nginx's check location is internal: a client cannot ask it (nor reach it through /open/).
    for target in ("/_authgate/check", "/open/../_authgate/check", "/open/%2e%2e/_authgate/check"):
        a = send("GET", target, token="alice", headers=[("X-Original-URI", "/api/x"),
                                                        ("X-Original-Method", "GET")])
        assert a.status == 404 and a.records == [], f"{target}: {a}"


@check("the session cookie never reaches the app; its other cookies do, unchanged")
def _():
    s = f"{SESSION_COOKIE}={SESSION_SECRET}"
    for sent, expected in (
        (f"a=1; {s}; b=2", "a=1; b=2"),
        (f"{s}; b=2", "b=2"),
        (f"a=1; {s}", "a=1"),
        (f"a=1;{s};b=2", "a=1;b=2"),
        (f"{s}; a=1; {s}", "a=1"),
        (s, None),
        ("a=1; b=2", "a=1; b=2"),
        # Another cookie whose name ends the same: not the session cookie, it passes.
        (f"x{SESSION_COOKIE}=1; a=2", f"x{SESSION_COOKIE}=1; a=2"),
    ):
        record = reached_once(send("GET", "/api/x", token="alice", headers=[("Cookie", sent)]),
                              ALICE)
        cookies = [v for n, v in record["lower"] if n == "cookie"]
        assert cookies == ([expected] if expected else []), f"{sent!r} -> {cookies}"
    # Two Cookie header lines (HTTP/1.1): nginx joins them, the session cookie still goes.
    a = send("GET", "/api/x", token="alice", headers=[("Cookie", "a=1"), ("Cookie", s)])
    assert [v for n, v in reached_once(a, ALICE)["lower"] if n == "cookie"] == ["a=1"]


@check("a session route without a session: 401 JSON for scripts, 302 to /open/signin?rd= for browsers")
def _():
    a = send("GET", "/app/page?x=1", headers=[("Accept", "application/json")])
    refused(a, 401, "unauthorized")
    assert a.header("location") is None, a
    assert (a.header("www-authenticate") or "").startswith("Cookie "), a
    for method in ("GET", "HEAD"):
        a = send(method, "/app/page?x=1", headers=[("Accept", "text/html,*/*;q=0.8")])
        assert a.status == 302 and a.records == [], a
        # authgate's sign-in URL as it wrote it (X-Authgate-Sign-In), a path on this host.
        assert a.header("location") == "/open/signin?rd=%2Fapp%2Fpage%3Fx%3D1", a
    # A forged cookie is no session.
    a = send("GET", "/app/", headers=[("Accept", "text/html"),
                                      ("Cookie", f"{SESSION_COOKIE}={'A' * 43}")])
    assert a.status == 302 and a.records == [], a
    # The sign-in page is authgate's, served through nginx on the app's host.
    a = send("GET", "/open/signin?rd=%2Fapp%2Fpage", headers=[("Accept", "text/html")])
    assert a.status == 200 and 'name="csrf_token"' in a.body and a.records == [], a
    assert "authgate_csrf=" in (a.header("set-cookie") or ""), a


@check("nothing the app ever received carried the session cookie or an identity header authgate did not decide")
def _():
    assert _all_records, "the app received nothing at all"
    for record in _all_records:
        for name, value in record["lower"]:
            assert SESSION_SECRET not in value, record
            if name == "cookie":
                assert SESSION_COOKIE not in cookie_names(value), record
            if loose(name) in IDENTITY:
                assert name in ("user_id", "group_id", "x-impersonator-id"), record
                assert value in ("100", "101", "1", "7", "8"), record


print(f"{passes} passed, {failures} failed")
sys.exit(1 if failures else 0)
