"""A small HTTP receiver for trying target-restapi locally (standard library only).

Listens on 127.0.0.1 (port 0 = any free port), prints `listening on http://127.0.0.1:PORT`
as its first line, then one block per request: method, path, headers (less the usual
transport ones; Authorization shows only the user name) and the body. Every request is
answered 200 with `{"ok": true}`, except paths that start with `/status/<code>/`, which are
answered with that code (to try failures); `/soft-fail/`, answered 200 with
`{"ok": false, "error": "quota exceeded"}` (a failure said in the body); `/bulk/`,
answered 200 like a bulk API: a JSON list body gets `{"errors": ..., "items": [...]}`, one
entry per record in order, an object body its own entry; an entry is
`{"id": "srv-<record id>", "status": 201}`, or `{"status": 400, "error": "email is
required"}` for a record whose `email` is null; and paths that end in `/_bulk`, which read
the body as an Elasticsearch bulk request (NDJSON: an action line, then the document) and
answer as Elasticsearch does: `{"errors": false, "items": [...]}`, or 400 for a malformed
body. With `--certfile` and `--keyfile` it serves HTTPS; `--client-ca` then also requires a
client certificate that this PEM file verifies.

    python demo/receiver.py [--port 8000] [--port-file FILE]
                            [--certfile cert.pem --keyfile key.pem [--client-ca ca.pem]]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HEADERS_HIDDEN = ("host", "user-agent", "accept", "accept-encoding", "connection", "content-length")
STATUS_PATH = re.compile(r"^/status/(\d{3})(/|$)")
BULK_PATH = re.compile(r"^(?:/[^/?]+)?/_bulk(?:\?|$)")
BULK_ACTIONS = ("index", "create", "update", "delete")


def bulk_items(body: bytes) -> list[tuple[str, str | None]]:
    """(action, _id) of each action of an Elasticsearch bulk body; ValueError if malformed.

    Each action is a line `{"<action>": {...}}`, followed by its document line except for
    delete; the body ends with a newline.
    """
    if not body.endswith(b"\n"):
        raise ValueError("the bulk request must be terminated by a newline [\\n]")
    lines = iter(body.decode().split("\n")[:-1])
    items = []
    for line in lines:
        action = json.loads(line)
        name = next(iter(action)) if isinstance(action, dict) and len(action) == 1 else None
        meta = action[name] if name in BULK_ACTIONS else None
        if not isinstance(meta, dict):
            raise ValueError(f"malformed action line, expected one of {BULK_ACTIONS}: {line}")
        if name != "delete" and not isinstance(json.loads(next(lines, "null")), dict):
            raise ValueError(f"the {name} action needs a document object on the next line")
        items.append((name, None if meta.get("_id") is None else str(meta["_id"])))
    return items


def bulk_entry(record: object) -> dict:
    """What a bulk API says of one record: created (with a new id), or refused."""
    if not isinstance(record, dict):
        return {"status": 400, "error": "not an object"}
    if record.get("email") is None:
        return {"status": 400, "error": "email is required"}
    return {"id": f"srv-{record.get('id')}", "status": 201}


def answer_for(path: str, body: bytes) -> tuple[int, object]:
    """The status and JSON answer of a request to `path`."""
    match = STATUS_PATH.match(path)
    if match:
        status = int(match.group(1))
        return status, {"ok": status < 400}
    if path.startswith("/soft-fail/"):
        return 200, {"ok": False, "error": "quota exceeded"}
    if path.startswith("/bulk/"):
        try:
            sent = json.loads(body)
        except ValueError:
            return 400, {"ok": False, "error": "the body is not JSON"}
        if not isinstance(sent, list):
            return 200, bulk_entry(sent)
        items = [bulk_entry(record) for record in sent]
        return 200, {"errors": any(i["status"] >= 300 for i in items), "items": items}
    return 200, {"ok": True}


def show_authorization(value: str) -> str:
    """Show who logged in, never the password."""
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(token).decode().split(":", 1)[0]
        except ValueError:
            user = "?"
        return f"Basic (user {user!r}, password hidden)"
    return f"{scheme} (hidden)"


class Handler(BaseHTTPRequestHandler):
    """Logs each request to stdout and answers it."""

    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        lines = [f"{self.command} {self.path}"]
        for name, value in self.headers.items():
            lower = name.lower()
            if lower == "authorization":
                lines.append(f"  {name}: {show_authorization(value)}")
            elif lower not in HEADERS_HIDDEN:
                lines.append(f"  {name}: {value}")
        if body:
            lines.append(f"  body: {body.decode(errors='replace')}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

        if BULK_PATH.match(self.path):
            status, answer = self._bulk(body)
        else:
            status, answer_value = answer_for(self.path, body)
            answer = json.dumps(answer_value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _bulk(self, body: bytes) -> tuple[int, bytes]:
        """Elasticsearch's answer to a bulk body: an item per action, or 400."""
        try:
            items = bulk_items(body)
        except ValueError as exc:
            print(f"  bulk: refused: {exc}", flush=True)
            error = {"type": "illegal_argument_exception", "reason": str(exc)}
            return 400, json.dumps({"error": error, "status": 400}).encode()
        print("  bulk: " + ", ".join(f"{name} _id={id_}" for name, id_ in items), flush=True)
        answer = {
            "errors": False,
            "items": [
                {name: {"_id": id_, "status": 201 if name in ("index", "create") else 200}}
                for name, id_ in items
            ],
        }
        return 200, json.dumps(answer).encode()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default access log on stderr; requests are shown on stdout."""


def tls_context(args: argparse.Namespace) -> ssl.SSLContext:
    """The server side of HTTPS, and of mutual TLS when a client CA is given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.certfile, args.keyfile)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.client_ca)
    return context


def main() -> None:
    """Serve until interrupted or terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--port-file", type=Path, help="also write the chosen port here")
    parser.add_argument("--certfile", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--keyfile", type=Path, help="the private key of --certfile (PEM)")
    parser.add_argument("--client-ca", type=Path, help="require a client certificate it verifies")
    args = parser.parse_args()
    if bool(args.certfile) != bool(args.keyfile) or (args.client_ca and not args.certfile):
        parser.error("--certfile and --keyfile go together; --client-ca needs them")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.certfile:
        server.socket = tls_context(args).wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    if args.port_file:
        args.port_file.write_text(f"{port}\n")
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
