"""Every example the docs show is run, and what it shows is what the run produces.

The pages mark their examples with HTML comments (see docs/development.md, "Documented
examples are tested"): `example:`, `also:` and `run:` say what to run, `shows:` what the
next code block (or inline code) shows, `covered:` names the test that runs a block needing
servers this module has not. `…` in shown text matches anything; the docs' ports (8000 the
demo receiver, 8001 the OAuth2 token endpoint, 8443 HTTPS, 8444 mutual TLS) are replaced by
the real ones. The runs are independent, so they are spread over a few lanes, each with its
own demo receivers on free ports, run side by side; the tests then compare.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.docs_markers import (
    DOC_PORT,
    LOG_PREFIX,
    REQUEST_LINE,
    Expect,
    Parsed,
    Run,
    matches,
    parse,
)
from support.run import RUN_TIMEOUT, clean_env

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "README.md",
    "docs/examples.md",
    "docs/security-tls.md",
    "docs/delivery.md",
    "docs/ndjson.md",
    "docs/answers.md",
    "docs/deletes.md",
]
LANES = 4

# Inputs of the bad-input examples in docs/delivery.md, which show only the error line.
USERS = (ROOT / "sample_data" / "users.singer").read_text().splitlines(keepends=True)
BAD_INPUTS = {
    "bad_json.singer": "".join(USERS[:3]) + '{"type": "RECORD", "stream": "users", "record"= 1}\n',
    "bad_record.singer": USERS[0]
    + '{"type": "RECORD", "stream": "users", "record": {"id": "1"}}\n',
    "no_schema.singer": USERS[1],
}

PARSED = Parsed()
for _page in PAGES:
    parse(PARSED, ROOT, _page)


# Servers


class TokenEndpoint(ThreadingHTTPServer):
    """The minimal OAuth2 token endpoint of docs/examples.md, on a free port."""

    daemon_threads = True

    def __init__(self) -> None:
        self.lines: list[str] = []

        class Token(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = self.rfile.read(int(self.headers["Content-Length"])).decode()
                auth = self.headers.get("Authorization", "none").split(" ")[0]
                self.server.lines.append(f"token request: {form} (Authorization: {auth})")
                token = {"access_token": "at-demo-1", "token_type": "Bearer", "expires_in": 3600}
                body = json.dumps(token).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Token)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Receiver:
    """demo/receiver.py as a program, on a free port, its output in a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-u", str(ROOT / "demo" / "receiver.py"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            first, newline, _ = log.read_text().partition("\n")
            if newline:
                self.port = int(first.rsplit(":", 1)[1])
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"demo/receiver.py did not start: {log.read_text()}")

    def size(self) -> int:
        return self.log.stat().st_size

    def since(self, offset: int) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read().decode()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def self_signed(folder: Path, name: str, common_name: str) -> None:
    """`openssl req -x509 -newkey ... -nodes -subj /CN=<common_name>` of the docs, in Python."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / f"{name}cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


# `python -m target_restapi` spends ~0.5 s of CPU importing, 50+ times here on a shared
# machine. This server imports it once, then forks a child per run: a process of its own
# with its cwd, environment, stdin, stdout and stderr, running `target-restapi --config`.
FORK_SERVER = r"""
import json, os, signal, sys, time, traceback
from target_restapi.target import TargetRestApi

def child(job):
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    os.dup2(os.open(job["stdin"], os.O_RDONLY), 0)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    sys.argv = ["target-restapi", *job["args"]]
    code = 1
    try:
        TargetRestApi.cli()
        code = 0
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

pending = b""
while True:
    while b"\n" not in pending:
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit(0)
        pending += chunk
    line, pending = pending.split(b"\n", 1)
    job = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        child(job)
    deadline, status = time.monotonic() + job["timeout"], None
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(raw)
        elif time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        else:
            time.sleep(0.01)
    sys.stdout.write(json.dumps(status) + "\n")
    sys.stdout.flush()
"""


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    requests: str
    tokens: str
    folder: Path
    ports: dict[str, str]


class Lane:
    """A sequence of runs with its own servers; lanes run side by side."""

    def __init__(self, folder: Path, shared: Path) -> None:
        self.folder, self.shared = folder, shared
        folder.mkdir()
        self.receivers = {"8000": Receiver(folder / "receiver.log")}
        self.token = TokenEndpoint()
        self.launcher = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=clean_env(),
        )
        self.ports = {
            "8000": str(self.receivers["8000"].port),
            "8001": str(self.token.server_address[1]),
        }

    def server(self, doc_port: str, *args: str) -> None:
        if doc_port not in self.receivers:
            tls = ["--certfile", str(self.shared / "cert.pem")]
            tls += ["--keyfile", str(self.shared / "key.pem"), *args]
            receiver = Receiver(self.folder / f"receiver-{doc_port}.log", *tls)
            self.receivers[doc_port] = receiver
            self.ports[doc_port] = str(receiver.port)

    def run(self, number: int, run: Run) -> Outcome:
        config = json.dumps(run.config)
        if "8443" in config:
            self.server("8443")
        if "8444" in config:
            self.server("8444", "--client-ca", str(self.shared / "client-cert.pem"))
        folder = self.folder / f"run-{number}"
        folder.mkdir()
        for item in self.shared.iterdir():
            (folder / item.name).symlink_to(item)
        (folder / "config.json").write_text(DOC_PORT.sub(lambda m: self.ports[m[1]], config))
        offsets = {port: receiver.size() for port, receiver in self.receivers.items()}
        tokens = len(self.token.lines)
        job = {
            "cwd": str(folder),
            "env": clean_env(),
            "args": ["--config", "config.json"],
            "stdin": str(folder / run.input),
            "stdout": str(folder / "stdout"),
            "stderr": str(folder / "stderr"),
            "timeout": RUN_TIMEOUT,
        }
        self.launcher.stdin.write(json.dumps(job).encode() + b"\n")
        self.launcher.stdin.flush()
        returncode = json.loads(self.launcher.stdout.readline() or "null")
        assert returncode is not None, f"{run.where}: the fork server stopped"
        requests = "".join(r.since(offsets.get(p, 0)) for p, r in self.receivers.items())
        return Outcome(
            returncode,
            (folder / "stdout").read_text(),
            (folder / "stderr").read_text(),
            requests.replace("\r\n", "\n"),
            "\n".join(self.token.lines[tokens:]),
            folder,
            self.ports,
        )

    def stop(self) -> None:
        self.launcher.stdin.close()
        try:
            self.launcher.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.launcher.kill()
            self.launcher.wait()
        self.launcher.stdout.close()  # left open, the pipe is a leaked file
        self.token.shutdown()
        self.token.server_close()
        for receiver in self.receivers.values():
            receiver.stop()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[int, Outcome]:
    """Every run of the docs, by its index in PARSED.runs."""
    root = tmp_path_factory.mktemp("docs")
    shared = root / "shared"
    shared.mkdir()
    (shared / "sample_data").symlink_to(ROOT / "sample_data")
    for name, content in {**PARSED.files, **BAD_INPUTS}.items():
        (shared / name).write_text(content)
    self_signed(shared, "", "localhost")
    self_signed(shared, "client-", "demo-client")
    # The runs that need HTTPS share the first lane, so that only it starts those receivers.
    plan: list[list[int]] = [[] for _ in range(LANES)]
    for index, run in enumerate(PARSED.runs):
        config = json.dumps(run.config)
        plan[0 if re.search(r":844[34]\b", config) else 1 + index % (LANES - 1)].append(index)
    lanes: list[Lane] = []
    try:
        with ThreadPoolExecutor(LANES) as pool:
            lanes = list(pool.map(lambda n: Lane(root / f"lane-{n}", shared), range(LANES)))

            def drive(lane: Lane, indexes: list[int]) -> dict[int, Outcome]:
                return {i: lane.run(i, PARSED.runs[i]) for i in indexes}

            results: dict[int, Outcome] = {}
            for done in pool.map(drive, lanes, plan):
                results.update(done)
        return results
    finally:
        for lane in lanes:
            lane.stop()


def check(expect: Expect, outcome: Outcome) -> None:
    shown = DOC_PORT.sub(lambda m: outcome.ports.get(m[1], m[1]), expect.text)
    chunks = re.split(r"\n(?=(?:GET|POST|PUT|PATCH|DELETE) /)", outcome.requests)
    requests = [chunk for chunk in chunks if REQUEST_LINE.match(chunk)]
    logged = [*outcome.stderr.splitlines(), *LOG_PREFIX.findall(outcome.stderr)]
    kind = expect.kind
    if kind == "requests":
        actual = outcome.requests
    elif kind == "request lines, any order":
        actual, shown = (
            "\n".join(sorted(r.split("\n", 1)[0] for r in requests)),
            "\n".join(sorted(shown.splitlines())),
        )
    elif kind == "stdout":
        actual = outcome.stdout
    elif kind == "token requests":
        actual = outcome.tokens
    elif kind == "body":
        assert requests, f"{expect.where}: no request was received"
        actual = requests[0].split("\n  body: ", 1)[-1]
    elif kind.startswith("file "):
        found = sorted(outcome.folder.glob(kind.removeprefix("file ")))
        assert len(found) == 1, f"{expect.where}: {kind}: found {found}"
        actual = found[0].read_text()
    elif kind in ("log", "line"):
        lines = (
            logged
            if kind == "log"
            else [
                *logged,
                *outcome.stdout.splitlines(),
                *outcome.tokens.splitlines(),
                *(line.strip() for line in outcome.requests.splitlines()),
            ]
        )
        for wanted in shown.splitlines():
            if wanted.strip() not in ("", "…"):
                assert any(matches(wanted, line) for line in lines), (
                    f"{expect.where}: no line of the run is\n{wanted}\nstderr:\n{outcome.stderr}"
                )
        return
    else:
        raise AssertionError(f"{expect.where}: unknown `shows: {kind}`")
    assert matches(shown, actual), f"{expect.where}: shown\n{shown}\n--- but the run gave\n{actual}"


@pytest.mark.slow
# One worker (pytest-xdist) runs every example, so `outcomes` runs the docs once.
@pytest.mark.xdist_group("docs_examples")
@pytest.mark.parametrize("index", range(len(PARSED.runs)), ids=[r.where for r in PARSED.runs])
def test_documented_example(index, outcomes):
    run, outcome = PARSED.runs[index], outcomes[index]
    assert run.expects, f"{run.where}: a run that shows nothing"
    assert outcome.returncode == run.exit, f"{run.where}: exit {outcome.returncode}\n" + (
        outcome.stderr
    )
    for expect in run.expects:
        check(expect, outcome)


def test_every_shown_block_is_run_or_covered():
    assert PARSED.runs
    assert not PARSED.problems, "\n".join(PARSED.problems)


@pytest.mark.parametrize("path, name", PARSED.covered, ids=["::".join(c) for c in PARSED.covered])
def test_covered_blocks_name_a_real_test(path, name):
    assert re.search(rf"^def {re.escape(name)}\(", (ROOT / path).read_text(), re.MULTILINE)


def test_wildcards_and_varying_parts_match_only_their_shape():
    assert matches("POST /users\n  body: [{…}]", "POST /users\n  body: [{1}]")
    assert not matches("POST /users\n  body: [{…}]", "POST /users\n  body: [{1}]\nPOST /x")
    assert matches('"time":"2026-11-26T15:37:44.992+00:00"', '"time":"2020-01-01T00:00:00.1+00:00"')
    assert not matches('"time":"2026-11-26T15:37:44.992+00:00"', '"time":null')
    assert matches("…\nB", "B") and matches("…\nB", "A\nA\nB") and not matches("…\nB", "AB")
    assert matches("A\n…\nB", "A\nB") and matches("A\n…", "A\nC") and not matches("A\n…", "AC")
    assert matches("…", "") and matches("…", "A\nB")


def test_readme_is_a_front_door_that_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 20_000, "README.md is for a first look: move details to docs/"
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"README.md's Documentation list lacks {page.name}"
