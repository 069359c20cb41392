"""Revocation then first refusal: how long after POST /oauth2/revoke is sent does the proxy path
refuse the revoked access token? For each kind (opaque from the mobile dialect, JWT from
oauth2), ROUNDS times: a fresh access token (refresh rotation), GET /echo/bench answers 200 at
every instance (so the token is cached there), the revoke is sent to instance A, then each
instance is polled on its own keep-alive connection until it answers 401. Prints one line per
kind and instance: "kind instance p50_ms max_ms revoke_ms" (revoke_ms: the revoke's own answer).

    python3 revoke.py ROUNDS BASIC MOBILE_CLIENT WEB_REFRESH MOBILE_REFRESH HOST:PORT [HOST:PORT]
"""
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlencode

rounds, basic, mobile_client, refresh = int(sys.argv[1]), sys.argv[2], sys.argv[3], {}
refresh["jwt"], refresh["opaque"] = sys.argv[4], sys.argv[5]
instances = sys.argv[6:]
conns = {hp: http.client.HTTPConnection(hp, timeout=10) for hp in instances}
a = conns[instances[0]]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def fresh(kind):
    """A new access token of `kind`, by rotating that kind's refresh token."""
    if kind == "jwt":
        status, body = call(a, "POST", "/oauth2/token",
                            urlencode({"grant_type": "refresh_token", "refresh_token": refresh[kind]}),
                            {**FORM, "Authorization": "Basic " + basic})
    else:
        status, body = call(a, "POST", "/auth/token",
                            urlencode({"client_id": mobile_client, "grant_type": "refresh_token",
                                       "refresh_token": refresh[kind]}), FORM)
    assert status == 200, body
    answer = json.loads(body)
    refresh[kind] = answer["refresh_token"]
    return answer["access_token"]


def echo(conn, token):
    return call(conn, "GET", "/echo/bench", headers={"Authorization": "Bearer " + token})[0]


for kind in ("opaque", "jwt"):
    waits = {hp: [] for hp in instances}
    revoke_ms = []
    for _ in range(rounds):
        token = fresh(kind)
        for hp, conn in conns.items():
            assert echo(conn, token) == 200 and echo(conn, token) == 200, (kind, hp)
        if kind == "jwt":
            body, headers = urlencode({"token": token, "token_type_hint": "access_token"}), \
                {**FORM, "Authorization": "Basic " + basic}
        else:
            body, headers = urlencode({"token": token, "token_type_hint": "access_token",
                                       "client_id": mobile_client}), FORM
        t0 = time.monotonic()
        status, answer = call(a, "POST", "/oauth2/revoke", body, headers)
        revoke_ms.append((time.monotonic() - t0) * 1e3)
        assert status == 200, answer
        for hp, conn in conns.items():
            while echo(conn, token) != 401:
                if time.monotonic() - t0 > 30:
                    raise SystemExit(f"{kind} token still accepted at {hp} 30 s after revocation")
                time.sleep(0.001)
            waits[hp].append((time.monotonic() - t0) * 1e3)
    for n, hp in enumerate(instances):
        w = waits[hp]
        print(f"{kind} {'AB'[n]} {statistics.median(w):.2f} {max(w):.2f} {statistics.median(revoke_ms):.2f}")
