"""The request corpus of the differential test (tests/differential/run.sh).

Every case is one raw HTTP/1.1 request, written byte for byte (nothing normalises it on the
way out: differential.py sends these bytes over TLS as they are). A case aims at the protected
handler (`/pub/secret`) through a reading the gateway may not share, or carries something an
upstream must never see (a client-chosen identity, an override header, an underscore framing
header, an upgrade).

    python3 corpus.py            # prints the cases, one line each, and their number

Placeholders filled in by the driver: `{host}` (the stack's virtual host, e.g. tomcat.test)
and `{port}` (the gateway's port). The driver adds the `Host` line (unless the case sets
`host`), the marker `X-Diff-Id` and, in the token pass, `Authorization: Bearer …` right after it.
"""

from __future__ import annotations

import dataclasses
import itertools

ATTACKER = "666"  # the identity an attacker claims; no other header in the corpus carries it


@dataclasses.dataclass
class Case:
    group: str
    name: str
    method: str = "GET"
    target: str = "/pub/hello"
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes = b""
    # "normal": `Host: {host}`; "none": no Host line; "twice": the stack's host then another
    # stack's; any other string: that exact Host value.
    host: str = "normal"
    # Raw header lines, written as they are after the other headers (for malformed framing).
    raw_lines: list[str] = dataclasses.field(default_factory=list)
    # Add Content-Length for the body unless the case frames the body itself.
    frame_body: bool = True
    id: int = -1

    def describe(self) -> str:
        extra = "".join(f" [{n}: {v}]" for n, v in self.headers)
        extra += "".join(f" [{line!r}]" for line in self.raw_lines)
        if self.host != "normal":
            extra += f" [host={self.host}]"
        if self.body:
            extra += f" body={self.body!r}"
        return f"{self.method} {self.target}{extra}"


# --- paths that try to reach /pub/secret ------------------------------------------------------

CONTROL = [
    ("control", "/pub/hello"),
    ("control", "/pub/secret"),
    ("control", "/pub/secret/x"),
    ("control", "/pub/secret/"),
    ("control", "/pub/secretx"),
    ("control", "/pub/x/../secret"),
    ("control", "/pub/./secret"),
]

ENCODINGS = [
    "/pub/%73ecret",
    "/pub/secre%74",
    "/pub/%73%65%63%72%65%74",
    "/pub/%53ECRET",
    "/pub/%2e/secret",
    "/pub/%2E/secret",
    "/pub/x/%2e%2e/secret",
    "/pub/x/%2E%2e/secret",
    "/pub/x/%2e./secret",
    "/pub/x/.%2e/secret",
    "/pub/x/%252e%252e/secret",
    "/pub/x/%252E%252E/secret",
    "/pub/%252e/secret",
    "/pub/x/%25%32%65%25%32%65/secret",
    "/pub/x%2f..%2fsecret",
    "/pub/x%2F..%2Fsecret",
    "/pub/x/..%2fsecret",
    "/pub%2fsecret",
    "/pub%2Fsecret",
    "/pub/x%252f..%252fsecret",
    "/pub/x%5c..%5csecret",
    "/pub/x%5C..%5Csecret",
    "/pub/x/..%5csecret",
    "/pub%5csecret",
    "/pub%5Csecret",
    "/pub/x%255c..%255csecret",
    "/pub%255csecret",
    "/pub/x/%c0%ae%c0%ae/secret",
    "/pub/x/%C0%AE%C0%AE/secret",
    "/pub/x%c0%af..%c0%afsecret",
    "/pub/x/%e0%80%ae%e0%80%ae/secret",
    "/pub/x%e0%80%af..%e0%80%afsecret",
    "/pub/x/%c0%2e%c0%2e/secret",
    "/pub/x%ef%bc%8f..%ef%bc%8fsecret",
    "/pub%ef%bc%8fsecret",
    "/pub/x/%ef%bc%8e%ef%bc%8e/secret",
    "/pub/secret%00",
    "/pub/secret%00.json",
    "/pub/secret%0a",
    "/pub/secret%0d%0a",
    "/pub/secret%09",
    "/pub/secret%20",
    "/pub/secret%2e",
    "/pub/secret%3bx",
    "/pub/secret%3Bjsessionid=1",
    "/pub/secret%23x",
    "/pub/secret%3f",
    "/pub/secret%2f",
    "/pub/secret%5c",
    "/pub/secret%",
    "/pub/secret%zz",
    "/pub/secret%u0073",
    "/pub/%u0073ecret",
]

SEPARATORS = [
    "/pub\\secret",
    "/pub/x\\..\\secret",
    "/pub\\..\\pub\\secret",
    "/pub/secret\\",
    "/pub/secret;x",
    "/pub/secret;",
    "/pub/secret;jsessionid=1",
    "/pub/secret;jsessionid=1/x",
    "/pub/secret;a=b;c=d",
    "/pub/secret;/x",
    "/pub;x/secret",
    "/pub;/secret",
    "/pub;jsessionid=1/secret",
    "/pub/x/..;/secret",
    "/pub/x/..;x/secret",
    "/pub/.;/secret",
    "/pub/x;/../secret",
    "/pub/..;/pub/secret",
    "/pub/x/.;/../secret",
    "/pub/x/..;jsessionid=1/secret",
    "/pub//secret",
    "//pub/secret",
    "/pub///secret",
    "/pub/./secret/.",
    "/pub/secret/.",
    "/pub/secret/..;/secret",
    "/pub/secret//",
    "/pub/secret/;",
    "/pub/x/../../pub/secret",
    "/pub/x/./../secret",
    "/pub/x/%2e%2e;/secret",
    "/pub/x/%2e%2e%3b/secret",
    "/pub/x/..%3b/secret",
    "/pub/x/..%00/secret",
    "/pub/secret#frag",
    "/pub/secret?",
    "/pub/secret?x=1",
]

CASE = [
    "/pub/SECRET",
    "/PUB/secret",
    "/pub/Secret",
    "/PUB/SECRET",
    "/Pub/Secret",
    "/pub/sEcReT",
    "/pub/SECRET/x",
    "/pub/SECRET;x",
    "/PUB/secret;x",
    "/pub/SECRET/",
    "/pub/secreT.",
]

TRAILING = [
    "/pub/secret.",
    "/pub/secret..",
    "/pub/secret...",
    "/pub/secret%20",
    "/pub/secret%20%20",
    "/pub/secret%2e%20",
    "/pub/secret.json",
    "/pub/secret.x.y",
    "/pub/secret.html",
    "/pub/secret~",
    "/pub/secret::$DATA",
    "/pub/secret/..",
    "/pub/secret/x/..",
    "/pub/secret%20/x",
    "/pub/secret./x",
]

UNICODE = [
    "/pub/%ef%bd%93ecret",                    # fullwidth s (U+FF53)
    "/pub/%ef%bd%93%ef%bd%85%ef%bd%83%ef%bd%92%ef%bd%85%ef%bd%94",  # fullwidth "secret"
    "/pub/%ef%bc%b3ECRET",                    # fullwidth S (U+FF33)
    "/%ef%bd%90ub/secret",                    # fullwidth p
    "/pub/%c5%bfecret",                       # long s (U+017F, uppercases to S)
    "/pub/%c5%bfECRET",
    "/pub/%e2%84%aaecret",                    # Kelvin sign (U+212A, lowercases to k)
    "/pub/s%e2%84%aaecret",
    "/pub/secre%c5%a3",                       # t with cedilla
    "/pub/secr%c3%a9t",                       # é
    "/pub/secre%e2%80%8bt",                   # zero-width space
    "/pub/secret%e2%80%8b",
    "/pub/secret%ef%bb%bf",                   # BOM
    "/pub/secret%c2%a0",                      # no-break space
    "/pub/s%cc%87ecret",                      # combining dot
    "/pub/%c4%b1ecret",                       # dotless i (nothing to do with "secret")
]

PATH_PARAM_SEGMENTS = [";x", ";a=b", ";jsessionid=1", "%3bx", ";"]

# --- identity headers -------------------------------------------------------------------------

IDENTITY_NAMES = [
    "user_id", "User-Id", "USER_ID", "user-id", "UserId", "userid", "USERID", "user.id",
    "user__id", "user--id", "user_-id", "x-x-user-id", "X_User_Id", "X-User-Id", "x-user_id",
    "X-UserId", "X-User", "group_id", "Group-Id", "groupid", "GROUPID", "group.id",
    "x-x-group-id", "X-Group-Id", "Remote-User", "Remote_User", "X-Remote-User",
    "X-Forwarded-User", "X-Auth-Request-User", "X-WEBAUTH-USER", "X-MS-CLIENT-PRINCIPAL-NAME",
    "X-MS-CLIENT-PRINCIPAL-ID", "X-Remote-Group", "X-Forwarded-Groups",
    # The gateway's own names (identity.impersonator_header, client_header, assertion_header).
    "X-Impersonator-Id", "X-Client-Id", "X-Authgate-Assertion",
]
# What well-known authenticating proxies put in front of the applications authgate replaces
# them for (Authelia, oauth2-proxy, Kong, Google IAP, AWS ALB, Cloudflare Access): a legacy
# upstream may still trust them.
PROXY_IDENTITY_NAMES = [
    "Remote-Groups", "Remote-Email", "X-Forwarded-Email", "X-Authenticated-User",
    "X-Authenticated-Userid", "X-Consumer-Username", "X-Goog-Authenticated-User-Email",
    "X-Amzn-Oidc-Identity", "Cf-Access-Authenticated-User-Email",
]

OVERRIDES = [
    # (method, target, headers, body)
    ("GET", "/pub/hello", [("X-Original-URL", "/pub/secret")], b""),
    ("GET", "/pub/hello", [("X-Rewrite-URL", "/pub/secret")], b""),
    ("GET", "/pub/hello", [("X-Original-URL", "/pub/secret;x")], b""),
    ("POST", "/pub/hello", [("X-Original-URL", "/pub/secret")], b""),
    ("GET", "/pub/hello", [("X-Original-URI", "/pub/secret")], b""),
    ("GET", "/pub/hello", [("X-Forwarded-Prefix", "/pub/secret")], b""),
    ("GET", "/pub/hello", [("x-original-url", "/PUB/SECRET")], b""),
    ("POST", "/pub/hello", [("X-HTTP-Method-Override", "DELETE")], b""),
    ("GET", "/pub/hello", [("X-HTTP-Method-Override", "DELETE")], b""),
    ("POST", "/pub/hello", [("X-HTTP-Method", "DELETE")], b""),
    ("POST", "/pub/hello", [("X-Method-Override", "DELETE")], b""),
    ("POST", "/pub/secret", [("X-HTTP-Method-Override", "GET")], b""),
    ("POST", "/pub/hello?_method=DELETE", [], b""),
    ("POST", "/pub/hello", [("Content-Type", "application/x-www-form-urlencoded")], b"_method=DELETE"),
    ("POST", "/pub/secret", [("Content-Type", "application/x-www-form-urlencoded")], b"_method=PUT"),
    ("GET", "/pub/hello?_method=DELETE", [], b""),
]

FRAMING = [
    # (name, method, target, headers, body, raw_lines, frame_body)
    ("Transfer_Encoding chunked", "POST", "/pub/hello", [("Transfer_Encoding", "chunked")], b"5\r\nhello\r\n0\r\n\r\n", [], True),
    ("Transfer_Encoding on secret", "POST", "/pub/secret", [("Transfer_Encoding", "chunked")], b"0\r\n\r\n", [], True),
    ("Content_Length 5", "POST", "/pub/hello", [("Content_Length", "5")], b"hello", [], True),
    ("Content_Length only", "POST", "/pub/hello", [("Content_Length", "5")], b"", [], False),
    ("TE + CL", "POST", "/pub/hello", [("Transfer-Encoding", "chunked"), ("Content-Length", "5")], b"0\r\n\r\n", [], False),
    ("chunked", "POST", "/pub/hello", [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n0\r\n\r\n", [], False),
    ("TE chunked, identity", "POST", "/pub/hello", [("Transfer-Encoding", "chunked, identity")], b"0\r\n\r\n", [], False),
    ("TE xchunked", "POST", "/pub/hello", [("Transfer-Encoding", "xchunked")], b"", [], False),
    ("CL twice differing", "POST", "/pub/hello", [("Content-Length", "0"), ("Content-Length", "5")], b"hello", [], False),
    ("Transfer-Encoding with space", "POST", "/pub/hello", [], b"0\r\n\r\n", ["Transfer-Encoding : chunked"], False),
    ("Host_ underscore", "GET", "/pub/secret", [("Host_", "tomcat.test")], b"", [], True),
    ("Connection_ underscore", "GET", "/pub/hello", [("Connection_", "close")], b"", [], True),
    ("Upgrade_ underscore", "GET", "/pub/hello", [("Upgrade_", "h2c")], b"", [], True),
    ("chunked trailer user_id", "POST", "/pub/hello", [("Transfer-Encoding", "chunked"), ("Trailer", "user_id")],
     b"5\r\nhello\r\n0\r\nuser_id: " + ATTACKER.encode() + b"\r\n\r\n", [], False),
]

UPGRADES = [
    ("GET", "/pub/hello", [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]),
    ("GET", "/pub/secret", [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]),
    ("GET", "/pub/hello", [("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]),
    ("GET", "/pub/hello", [("Connection", "Upgrade"), ("Upgrade", "websocket")]),
    ("GET", "/pub/secret", [("Connection", "Upgrade"), ("Upgrade", "websocket")]),
    ("GET", "/pub/hello", [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                           ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]),
    ("GET", "/pub/hello", [("Connection", "Upgrade"), ("Upgrade", "foo")]),
    ("GET", "/pub/secret", [("Connection", "Upgrade"), ("Upgrade", "foo")]),
    ("GET", "/pub/hello", [("Upgrade", "foo")]),
    ("POST", "/pub/hello", [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "")]),
]

METHODS = [
    ("POST", "/pub/secret"), ("PUT", "/pub/secret"), ("DELETE", "/pub/secret"),
    ("PATCH", "/pub/secret"), ("HEAD", "/pub/secret"), ("OPTIONS", "/pub/secret"),
    ("TRACE", "/pub/secret"), ("get", "/pub/secret"), ("Get", "/pub/secret;x"),
    ("FOO", "/pub/secret"), ("HEAD", "/pub/secret;x"), ("OPTIONS", "*"),
    ("POST", "/pub/SECRET"), ("DELETE", "/pub/secret;x"),
]

TARGET_FORMS = [
    # (target, host mode)
    ("http://{host}/pub/secret", "normal"),
    ("https://{host}/pub/secret", "normal"),
    ("https://{host}/pub/secret;x", "normal"),
    ("http://{host}/pub/secret", "none"),
    ("https://other.test/pub/secret", "normal"),
    ("pub/secret", "normal"),
    ("secret", "normal"),
    ("/pub/hello", "none"),
    ("/pub/secret", "twice"),
    ("/pub/secret;x", "twice"),
    ("/pub/secret", "{host}:443"),
    ("/pub/secret;x", "{HOST}"),
    ("/pub/secret;x", "{host}."),
    ("/pub/secret;x", "{host}:{port}"),
    ("/pub/secret;x", "127.0.0.1"),
]

OTHER = [
    # (name, method, target, headers)
    ("access_token junk in query", "GET", "/pub/secret?access_token=junk-token-abc", []),
    ("access_token junk on public", "GET", "/pub/hello?access_token=junk-token-abc", []),
    ("access_token junk with ;x", "GET", "/pub/secret;x?access_token=junk-token-abc", []),
    ("access-token header junk", "GET", "/pub/secret;x", [("access-token", "junk-token-abc")]),
    ("Authorization Basic", "GET", "/pub/secret;x", [("Authorization", "Basic dXNlcjpwYXNz")]),
    ("Connection names user_id", "GET", "/pub/secret", [("Connection", "user_id, group_id")]),
    ("Connection names X-User-Id", "GET", "/pub/secret", [("Connection", "X-User-Id, X-Group-Id")]),
    ("Connection names Authorization", "GET", "/pub/secret", [("Connection", "Authorization")]),
    ("Connection names X-Forwarded-For", "GET", "/pub/secret;x", [("Connection", "close, X-Forwarded-For")]),
    ("Expect 100-continue", "POST", "/pub/secret;x", [("Expect", "100-continue")]),
    ("X-Forwarded-Host", "GET", "/pub/secret;x", [("X-Forwarded-Host", "other.test")]),
    ("Forwarded user", "GET", "/pub/hello", [("Forwarded", "for=1.2.3.4;user=" + ATTACKER)]),
    ("query user_id", "GET", "/pub/secret;x?user_id=" + ATTACKER, []),
]


def cases() -> list[Case]:
    out: list[Case] = []
    for group, target in CONTROL:
        out.append(Case(group, "control", target=target))
    for group, targets in (("encoding", ENCODINGS), ("separator", SEPARATORS), ("case", CASE),
                           ("trailing", TRAILING), ("unicode", UNICODE)):
        for target in targets:
            out.append(Case(group, group, target=target))
    # A path parameter on every segment, alone and all together.
    segments = ["pub", "secret", "x"]
    for param in PATH_PARAM_SEGMENTS:
        for i in range(len(segments)):
            parts = [s + (param if j == i else "") for j, s in enumerate(segments)]
            out.append(Case("path-param", f"param on segment {i}", target="/" + "/".join(parts)))
        out.append(Case("path-param", "param on every segment",
                        target="/" + "/".join(s + param for s in segments)))
    out.append(Case("path-param", "param on root", target="/;x/pub/secret"))
    # Identity spellings with the attacker's value, on the public and the protected path.
    for name, target in itertools.product(IDENTITY_NAMES + PROXY_IDENTITY_NAMES,
                                          ("/pub/hello", "/pub/secret")):
        out.append(Case("identity", name, target=target, headers=[(name, ATTACKER)]))
    out.append(Case("identity", "user_id twice", target="/pub/secret",
                    headers=[("user_id", ATTACKER), ("user_id", ATTACKER)]))
    out.append(Case("identity", "userid + user.id + user__id", target="/pub/hello",
                    headers=[("userid", ATTACKER), ("user.id", ATTACKER), ("user__id", ATTACKER)]))
    out.append(Case("identity", "obs-fold user_id", target="/pub/hello",
                    raw_lines=["X-Folded: a", " user_id: " + ATTACKER]))
    out.append(Case("identity", "space before colon", target="/pub/hello",
                    raw_lines=["user_id : " + ATTACKER]))
    out.append(Case("identity", "tab in name", target="/pub/hello",
                    raw_lines=["user_id\t: " + ATTACKER]))
    for method, target, headers, body in OVERRIDES:
        out.append(Case("override", ", ".join(n for n, _ in headers) or "_method", method=method,
                        target=target, headers=list(headers), body=body))
    for name, method, target, headers, body, raw_lines, frame_body in FRAMING:
        out.append(Case("framing", name, method=method, target=target, headers=list(headers),
                        body=body, raw_lines=list(raw_lines), frame_body=frame_body))
    for method, target, headers in UPGRADES:
        out.append(Case("upgrade", headers[-1][0] if headers else "upgrade", method=method,
                        target=target, headers=list(headers)))
    for method, target in METHODS:
        out.append(Case("method", method, method=method, target=target))
    for target, host in TARGET_FORMS:
        out.append(Case("target-form", f"host={host}", target=target, host=host))
    for name, method, target, headers in OTHER:
        out.append(Case("other", name, method=method, target=target, headers=list(headers)))
    for i, case in enumerate(out):
        case.id = i
    return out


if __name__ == "__main__":
    all_cases = cases()
    for case in all_cases:
        print(f"{case.id:4d} {case.group:12s} {case.describe()}")
    groups: dict[str, int] = {}
    for case in all_cases:
        groups[case.group] = groups.get(case.group, 0) + 1
    print(f"{len(all_cases)} cases: " + ", ".join(f"{g} {n}" for g, n in groups.items()))
