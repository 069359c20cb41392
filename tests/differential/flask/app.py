"""Flask/Werkzeug upstream of the differential test (tests/differential/run.sh).

Werkzeug's own server (threaded), default routing: `/pub/secret` and `/pub/secret/<path:rest>`
are the protected handler, `/pub/<path:rest>` the public one, every method. The method override
middleware is the one Flask's documentation offers ("Adding HTTP Method Overrides"): it honours
X-HTTP-Method-Override. Werkzeug's server drops header names containing `_` before the WSGI
environ is built, so the gateway's routes to this stack inject X-User-Id / X-Group-Id.
Each handler appends what Flask resolved to a JSON-lines file.
"""
import json
import sys
import threading

from flask import Flask, jsonify, request

port, records = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]


class HTTPMethodOverrideMiddleware:
    allowed_methods = frozenset(METHODS)
    bodyless_methods = frozenset(["GET", "HEAD", "OPTIONS", "DELETE"])

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        method = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if method in self.allowed_methods:
            environ["REQUEST_METHOD"] = method
        if method in self.bodyless_methods:
            environ["CONTENT_LENGTH"] = "0"
        return self.app(environ, start_response)


app = Flask(__name__)
app.wsgi_app = HTTPMethodOverrideMiddleware(app.wsgi_app)


@app.after_request
def mark(response):
    response.headers["X-Diff-Stack"] = "flask"
    return response


def record(handler):
    environ = request.environ
    rec = {
        "stack": "flask",
        "handler": handler,
        "method": request.method,
        "path": request.path,
        "route": request.url_rule.rule if request.url_rule else None,
        "uri": environ.get("RAW_URI") or environ.get("REQUEST_URI"),
        "diff_id": request.headers.get("X-Diff-Id"),
        "identity": {"user": request.headers.get("X-User-Id"), "group": request.headers.get("X-Group-Id")},
        "headers": [[k, v] for k, v in request.headers.items()],
        "vars": {k: str(v) for k, v in environ.items()
                 if isinstance(v, str) and (k.startswith("HTTP_") or "USER" in k or "AUTH" in k)},
    }
    with lock, open(records, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    return jsonify(stack="flask", handler=handler)


@app.route("/pub/secret", methods=METHODS)
@app.route("/pub/secret/<path:rest>", methods=METHODS)
def protected(rest=None):
    return record("protected")


@app.route("/pub/<path:rest>", methods=METHODS)
def public(rest):
    return record("public")


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False, debug=False)
