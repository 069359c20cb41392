"""Driver of the differential test (tests/differential/run.sh): sends the corpus (corpus.py)
through the gateway to every stack, twice (without a token, then with a non-admin token), joins
what each stack recorded to the request that caused it, and checks:

  (a) no request reaches a protected handler without the authentication its route requires:
      a protected-handler record in the pass without a token is a violation; one in the token
      pass must carry exactly the identity the gateway injects (user 100, group 7);
  (b) no upstream sees an identity the gateway did not inject: a header or server variable
      carrying the attacker's value (corpus.ATTACKER) anywhere, or an identity header in the
      pass without a token, is a violation; so is an override header (X-Original-URL,
      X-HTTP-Method-Override, ...) or an underscore spelling of a framing header reaching a
      stack, and a 101 answer to an upgrade other than a WebSocket handshake.

Requests are raw HTTP/1.1 bytes over TLS (no verification, no SNI, ALPN http/1.1), one
connection each, so nothing between the corpus and the gateway normalises them.

Exit status: 0 no violation, 1 violations, 2 the harness itself could not prove anything (a
stack did not answer the control requests as it must), 3 the driver failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

PASSES = (("none", "without a token"), ("token", "with a non-admin token (user 100, group 7)"))
EXPECTED_USER, EXPECTED_GROUP = "100", "7"

OUTCOMES = ("refused by gateway", "public handler", "protected + verified id",
            "stack 404/other", "VIOLATION")

# Names are compared folded: lower case, only letters and digits (PHP and CGI turn every other
# character into `_`, and `HTTP_` prefixes server variables).
def fold(name: str) -> str:
    folded = re.sub(r"[^a-z0-9]", "", name.lower())
    return folded[4:] if name.upper().startswith("HTTP_") else folded


MARKER_NAMES = {"xdiffid"}
OVERRIDE_NAMES = {"xoriginalurl", "xrewriteurl", "xhttpmethodoverride", "xhttpmethod",
                  "xmethodoverride"}
FRAMING_NAMES = {"transfer-encoding", "content-length", "host", "connection", "upgrade", "te",
                 "trailer", "expect"}


@dataclass
class Result:
    pass_name: str
    stack: str
    case: corpus.Case
    diff_id: str
    raw: bytes
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    records: list[dict] = field(default_factory=list)
    violations: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = ""


class Records:
    """A stack's JSON-lines file, read incrementally (complete lines only)."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in data[:end].splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"unparsable": line.decode("utf-8", "replace")})
        return out


def build_request(case: corpus.Case, host: str, other_host: str, diff_id: str, port: int,
                  token: str | None) -> bytes:
    def fill(s: str) -> str:
        return s.replace("{host}", host).replace("{HOST}", host.upper()).replace("{port}", str(port))

    lines = [f"{case.method} {fill(case.target)} HTTP/1.1"]
    if case.host == "normal":
        lines.append(f"Host: {host}")
    elif case.host == "twice":
        lines += [f"Host: {host}", f"Host: {other_host}"]
    elif case.host != "none":
        lines.append(f"Host: {fill(case.host)}")
    lines.append(f"X-Diff-Id: {diff_id}")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    names = {n.lower() for n, _ in case.headers}
    lines += [f"{n}: {fill(v)}" for n, v in case.headers]
    lines += case.raw_lines
    if case.frame_body and "content-length" not in names and "transfer-encoding" not in names:
        if case.body or case.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(case.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + case.body


def tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, sep, data = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return out + size_line + sep + data
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def exchange(ctx: ssl.SSLContext, port: int, raw: bytes, method: str, timeout: float):
    """Sends `raw`, returns (status, headers, body, error). Reads one response (skipping 1xx
    other than 101), framed by Content-Length, chunked, or the connection's end."""
    buf = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as plain:
            with ctx.wrap_socket(plain) as s:
                s.sendall(raw)
                deadline = time.monotonic() + timeout

                def more() -> bool:
                    nonlocal buf
                    if time.monotonic() > deadline:
                        raise TimeoutError("no complete answer in time")
                    chunk = s.recv(65536)
                    if not chunk:
                        return False
                    buf += chunk
                    return True

                while True:
                    while b"\r\n\r\n" not in buf:
                        if not more():
                            if not buf:
                                return None, {}, b"", "connection closed without an answer"
                            return None, {}, buf, "incomplete answer"
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    parts = lines[0].split(" ", 2)
                    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                    headers: dict[str, str] = {}
                    for line in lines[1:]:
                        name, _, value = line.partition(":")
                        key = name.strip().lower()
                        headers[key] = (headers[key] + ", " if key in headers else "") + value.strip()
                    if status is not None and 100 <= status < 200 and status != 101:
                        buf = rest
                        continue
                    break
                if status == 101 or method == "HEAD" or status in (204, 304):
                    return status, headers, b"", None
                if "content-length" in headers and headers["content-length"].isdigit():
                    want = int(headers["content-length"])
                    while len(rest) < want and more():
                        rest = buf.partition(b"\r\n\r\n")[2]
                    return status, headers, rest[:want], None
                if "chunked" in headers.get("transfer-encoding", ""):
                    while not rest.endswith(b"0\r\n\r\n") and more():
                        rest = buf.partition(b"\r\n\r\n")[2]
                    return status, headers, dechunk(rest), None
                while more():
                    pass
                return status, headers, buf.partition(b"\r\n\r\n")[2], None
    except (OSError, TimeoutError, ssl.SSLError) as e:
        if buf.startswith(b"HTTP/"):
            head = buf.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status = int(head[1]) if len(head) > 1 and head[1].isdigit() else None
            return status, {}, b"", f"{type(e).__name__}: {e}"
        return None, {}, b"", f"{type(e).__name__}: {e}"


def gateway_error(result: Result) -> bool:
    """The gateway's own error answer: JSON with `error` and `request_id` (docs/config.md).
    A HEAD answer has no body: then a JSON content type from something that is not a stack."""
    if result.case.method == "HEAD" and not result.body:
        return result.headers.get("content-type", "").startswith("application/json") \
            and "x-diff-stack" not in result.headers
    try:
        doc = json.loads(result.body)
    except ValueError:
        return False
    return isinstance(doc, dict) and "error" in doc and "request_id" in doc


def entries(record: dict):
    """Every (name, value) a stack exposed: header list and server/framework variables."""
    for pair in record.get("headers") or []:
        if isinstance(pair, list) and len(pair) == 2:
            yield "header", str(pair[0]), str(pair[1])
    for name, value in (record.get("vars") or {}).items():
        if value is not None:
            yield "var", str(name), str(value)


def check(result: Result) -> None:
    """Fills result.violations and result.outcome."""
    v = result.violations
    for rec in result.records:
        handler = rec.get("handler")
        where = f"{rec.get('stack')} {handler} handler (method {rec.get('method')}, path {rec.get('path')!r})"
        if "unparsable" in rec:
            v.append(("unparsable-record", rec["unparsable"][:200]))
            continue
        if handler == "protected":
            identity = rec.get("identity") or {}
            if result.pass_name == "none":
                v.append(("unauthenticated-protected",
                          f"reached the {where} without a token"))
            elif identity.get("user") != EXPECTED_USER or identity.get("group") != EXPECTED_GROUP:
                v.append(("identity-not-injected",
                          f"{where} read user={identity.get('user')!r} group={identity.get('group')!r}, "
                          f"the gateway injects user={EXPECTED_USER!r} group={EXPECTED_GROUP!r}"))
        attacker_seen = False
        seen: set[tuple[str, str]] = set()
        for kind, name, value in entries(rec):
            folded = fold(name)
            # A header and the server variable made of it are one finding.
            if folded in MARKER_NAMES or (folded, value) in seen:
                continue
            seen.add((folded, value))
            tokens = [t for t in re.split(r"[\s,;]+", value) if t]
            if corpus.ATTACKER in tokens:
                attacker_seen = True
                v.append(("attacker-identity", f"{where} saw {kind} {name}: {value!r}"))
            if folded in OVERRIDE_NAMES:
                v.append(("override-header", f"{where} saw {kind} {name}: {value!r}"))
            if kind == "header" and "_" in name and name.lower().replace("_", "-") in FRAMING_NAMES:
                v.append(("underscore-framing-header", f"{where} saw header {name}: {value!r}"))
        if result.pass_name == "none" and not attacker_seen:
            identity = rec.get("identity") or {}
            if identity.get("user") is not None or identity.get("group") is not None:
                v.append(("identity-without-token",
                          f"{where} read user={identity.get('user')!r} group={identity.get('group')!r} "
                          "though the gateway injected nothing"))
    if result.status == 101:
        upgrade = next((val for n, val in result.case.headers if n.lower() == "upgrade"), "")
        if upgrade.lower() != "websocket":
            v.append(("non-websocket-upgrade", f"101 Switching Protocols to Upgrade: {upgrade!r}"))

    if v:
        result.outcome = "VIOLATION"
    elif any(r.get("handler") == "protected" for r in result.records):
        result.outcome = "protected + verified id"
    elif any(r.get("handler") == "public" for r in result.records):
        result.outcome = "public handler"
    elif result.headers.get("x-diff-stack"):
        # The stack's application answered (404, 405, ...) but no handler ran.
        result.outcome = "stack 404/other"
    elif result.status is not None and 400 <= result.status < 500 and gateway_error(result):
        result.outcome = "refused by gateway"
    elif result.status is None or (result.status >= 400 and "x-request-id" not in result.headers):
        # No answer at all, or the HTTP parser's bare answer (no request id: it never reached
        # the gateway's handler, so it cannot have reached a stack either).
        result.outcome = "refused by gateway"
    else:
        # The gateway's 5xx (the upstream failed or timed out), or a stack's own server
        # refusing before its application ran (Tomcat's 400 for `%5c`, Node's for `get`).
        result.outcome = "stack 404/other"


def run_stack(pass_name: str, stack: str, hosts: dict[str, str], records: Records,
              cases: list[corpus.Case], port: int, token: str | None, timeout: float,
              by_id: dict[str, Result], lock: threading.Lock) -> None:
    ctx = tls_context()
    host = hosts[stack]
    other = next(h for s, h in hosts.items() if s != stack)
    for case in cases:
        diff_id = f"{pass_name[0]}-{stack}-{case.id}"
        raw = build_request(case, host, other, diff_id, port, token)
        result = Result(pass_name, stack, case, diff_id, raw)
        with lock:
            by_id[diff_id] = result
        result.status, result.headers, result.body, result.error = exchange(
            ctx, port, raw, case.method, timeout)
        for rec in records.read_new():
            target = by_id.get(rec.get("diff_id") or "")
            with lock:
                if target is None:
                    # No marker reached the stack (the record names none): it arrived while this
                    # request was in flight, and requests to one stack are sequential.
                    rec["joined_by"] = "time window"
                    result.records.append(rec)
                else:
                    target.records.append(rec)


def redact(raw: bytes, token: str | None) -> str:
    text = raw.decode("latin-1")
    if token:
        text = text.replace(token, "<token>")
    return text


def table(results: list[Result], stacks: list[str]) -> str:
    head = f"{'stack':8s} | " + " | ".join(f"{o:>{len(o)}s}" for o in OUTCOMES) + " | total"
    lines = [head, "-" * len(head)]
    for stack in stacks:
        counts = {o: 0 for o in OUTCOMES}
        for r in results:
            if r.stack == stack:
                counts[r.outcome] += 1
        lines.append(f"{stack:8s} | " + " | ".join(f"{counts[o]:>{len(o)}d}" for o in OUTCOMES)
                     + f" | {sum(counts.values()):5d}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway-port", type=int, required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--stack", action="append", required=True, metavar="NAME=HOST=RECORDS",
                    help="a stack: its name, virtual host at the gateway and JSON-lines record file")
    ap.add_argument("--timeout", type=float, default=6.0, help="seconds per request")
    ap.add_argument("--report", help="write every result as JSON lines here")
    ap.add_argument("--max-listed", type=int, default=0,
                    help="list at most this many violating requests of the corpus (0: all)")
    args = ap.parse_args()

    token = open(args.token_file).read().strip()
    stacks, hosts, files = [], {}, {}
    for spec in args.stack:
        name, host, path = spec.split("=", 2)
        stacks.append(name)
        hosts[name] = host
        files[name] = Records(path)
    cases = corpus.cases()
    by_id: dict[str, Result] = {}
    lock = threading.Lock()
    started = time.monotonic()
    for pass_name, _ in PASSES:
        threads = [threading.Thread(target=run_stack, args=(
            pass_name, stack, hosts, files[stack], cases, args.gateway_port,
            token if pass_name == "token" else None, args.timeout, by_id, lock))
            for stack in stacks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Records that arrived after their request's answer.
    time.sleep(0.5)
    for stack in stacks:
        for rec in files[stack].read_new():
            target = by_id.get(rec.get("diff_id") or "")
            if target is not None:
                target.records.append(rec)
            else:
                print(f"differential: a record matched no request: {json.dumps(rec)[:300]}")
    elapsed = time.monotonic() - started
    results = list(by_id.values())
    for r in results:
        check(r)

    print(f"differential: {len(cases)} cases x {len(stacks)} stacks x {len(PASSES)} passes = "
          f"{len(results)} requests in {elapsed:.1f} s")
    for pass_name, title in PASSES:
        print(f"\n== pass: {title}")
        print(table([r for r in results if r.pass_name == pass_name], stacks))

    # The harness proves nothing unless each stack answers the controls as it must.
    broken = []
    for stack in stacks:
        for pass_name, target, want in (("none", "/pub/hello", "public handler"),
                                        ("token", "/pub/hello", "public handler"),
                                        ("token", "/pub/secret", "protected + verified id"),
                                        ("token", "/pub/secret/x", "protected + verified id")):
            r = next(r for r in results if r.pass_name == pass_name and r.stack == stack
                     and r.case.group == "control" and r.case.target == target)
            if r.outcome != want:
                broken.append(f"{stack}: {pass_name} pass GET {target} gave {r.outcome!r} "
                              f"(status {r.status}, {r.error or ''} {r.body[:200]!r}, violations {r.violations})")
        r = next(r for r in results if r.pass_name == "none" and r.stack == stack
                 and r.case.group == "control" and r.case.target == "/pub/secret")
        if r.outcome != "refused by gateway":
            broken.append(f"{stack}: GET /pub/secret without a token gave {r.outcome!r} (status {r.status})")

    violations = [r for r in results if r.violations]
    notes: dict[str, int] = {}
    for r in results:
        for rec in r.records:
            if rec.get("wire_method") and rec.get("method") != rec.get("wire_method"):
                key = f"{r.stack}: method changed by the stack ({rec['wire_method']} -> {rec.get('method')})"
                notes[key] = notes.get(key, 0) + 1
            if rec.get("joined_by"):
                key = f"{r.stack}: records joined by time window (no X-Diff-Id reached the stack)"
                notes[key] = notes.get(key, 0) + 1
            if any(fold(name) == "upgrade" for _, name, _ in entries(rec)):
                key = f"{r.stack}: Upgrade header reached the stack"
                notes[key] = notes.get(key, 0) + 1
        if r.error and r.status is None:
            key = f"{r.stack}: no answer ({r.error.split(':')[0]})"
            notes[key] = notes.get(key, 0) + 1
    if notes:
        print("\n== notes (not violations)")
        for k, n in sorted(notes.items()):
            print(f"  {n:4d} x {k}")

    if args.report:
        with open(args.report, "w") as f:
            for r in sorted(results, key=lambda r: (r.pass_name, r.stack, r.case.id)):
                f.write(json.dumps({
                    "pass": r.pass_name, "stack": r.stack, "case": r.case.id, "group": r.case.group,
                    "request": redact(r.raw, token), "status": r.status, "error": r.error,
                    "response_headers": r.headers,
                    "body": r.body[:300].decode("utf-8", "replace"), "outcome": r.outcome,
                    "violations": r.violations, "records": r.records}) + "\n")

    kinds: dict[str, int] = {}
    for r in violations:
        for kind, _ in r.violations:
            kinds[kind] = kinds.get(kind, 0) + 1
    if violations:
        print(f"\n== {len(violations)} requests with violations: "
              + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        # One entry per request of the corpus and pass, the stacks it got through underneath.
        order = {p: i for i, (p, _) in enumerate(PASSES)}
        grouped: dict[tuple[int, int], list[Result]] = {}
        for r in sorted(violations, key=lambda r: stacks.index(r.stack)):
            grouped.setdefault((order[r.pass_name], r.case.id), []).append(r)
        keys = sorted(grouped)
        if args.max_listed:
            keys = keys[:args.max_listed]
        for key in keys:
            rs = grouped[key]
            first = rs[0]
            raw = redact(first.raw, token if first.pass_name == "token" else None)
            raw = raw.replace(f"X-Diff-Id: {first.diff_id}", "X-Diff-Id: …")
            label = first.case.group if first.case.name == first.case.group \
                else f"{first.case.group}: {first.case.name}"
            print(f"\n-- pass {first.pass_name!r}, case {first.case.id} ({label}), "
                  f"stacks: {', '.join(r.stack for r in rs)}")
            print("   request: " + repr(raw))
            for r in rs:
                for kind, detail in r.violations:
                    print(f"   {r.stack:7s} HTTP {r.status}  VIOLATION {kind}: {detail}")
        if len(keys) < len(grouped):
            print(f"\n({len(grouped) - len(keys)} more requests not listed; the full report: KEEP_DIFF_TMP=1, report.jsonl)")
    if broken:
        print("\ndifferential: the harness cannot conclude, a stack did not answer the controls:")
        for b in broken:
            print("  " + b)
        return 2
    if violations:
        print(f"\ndifferential: FAILED, {len(violations)} of {len(results)} requests violate the "
              "gateway's guarantees on a real stack")
        return 1
    print(f"\ndifferential: OK, no violation in {len(results)} requests")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # a bug of the harness is not a finding: exit 3, not 1
        import traceback
        traceback.print_exc()
        sys.exit(3)
