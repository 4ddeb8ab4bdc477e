"""Secrets are masked before any text is cut: no piece of a secret survives a cut.

A secret cut in half is no longer recognised, so every cut (the error's excerpt of an
answer, the answer's start that is read, the response file's 64 KiB) comes after the
masking, and a cut that may have split a secret drops the split piece too. The property
tests put a secret at any position of a real answer on loopback and look for any run of
RUN characters of it in the error, the error file and the response file.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.loopback import Server, items_input
from support.run import run_target

from target_restapi.delivery.dry_run import BODY_CHARS as DRY_RUN_BODY_CHARS
from target_restapi.delivery.retry import RetryPolicy
from target_restapi.delivery.transport import EXCERPT_CHARS, Request, Transport
from target_restapi.errors import DeliveryError
from target_restapi.output.error_file import ErrorFile
from target_restapi.output.redact import Redactor
from target_restapi.output.responses import BODY_LIMIT, ResponseFile
from target_restapi.settings.secrets import secrets_in

RUN = 4  # no run of this many characters of a secret may show
# Secrets and the rest of an answer use different letters: a run of a secret's letters
# in the output can only come from the secret.
SECRET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789-_+/="
FILLER = "abcdefghijkmnopqrstuvwxyz .,:;"
OTHER = "Q" * 150  # another secret, masked before the one looked for: the text shrinks
SIZES = sorted({EXCERPT_CHARS, 4 * EXCERPT_CHARS, BODY_LIMIT, BODY_LIMIT + 4096})


def runs(secret: str) -> set[str]:
    return {secret[i : i + RUN] for i in range(len(secret) - RUN + 1)}


def leaked(secret: str, text: str) -> set[str]:
    return {run for run in runs(secret) if run in text}


class Answers:
    """A loopback API that answers what the test puts in `body`."""

    def __init__(self) -> None:
        self.body = ""
        self.status = 400
        self.server = Server(lambda got: (self.status, {"Content-Type": "text/plain"}, self.body))


@pytest.fixture(scope="module")
def answers():
    api = Answers()
    yield api
    api.server.close()


def deliver(api: Answers, redactor: Redactor, folder: Path) -> tuple[str, str, str]:
    """Send one request as a sink does: the error, the error file and the response file."""
    transport = Transport(
        auth=None,
        timeout_seconds=10,
        sleep_seconds=0,
        retry=RetryPolicy(max_retries=0),
        verify=True,
        stop=threading.Event(),
        redactor=redactor,
    )
    request = Request("POST", api.server.url("/api"), {}, b"{}")
    try:
        with pytest.raises(DeliveryError) as failed:
            transport.send(request)
    finally:
        transport.close()
    exc = failed.value
    errors = ErrorFile(str(folder / "errors.jsonl"), redactor)
    errors.write({"error": str(exc), "answer": exc.answer}, [b'{"id": 1}'])
    errors.close()
    responses = ResponseFile(str(folder / "responses"), "s", "jsonl", redactor)
    fields = {"stream": "s", "method": "POST", "url": request.url, "keys": {}}
    responses.write(**fields, response=exc.response, attempts=1, error=str(exc))
    responses.close()
    error_file = (folder / "errors.jsonl").read_text()
    response_file = next((folder / "responses").iterdir()).read_text()
    # The URL's random port (say 40123) may spell a run of a secret of digits: not a leak.
    url = request.url
    return (
        str(exc).replace(url, "<url>"),
        error_file.replace(url, "<url>"),
        response_file.replace(url, "<url>"),
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    secret=st.text(SECRET_ALPHABET, min_size=RUN + 2, max_size=80),
    size=st.sampled_from(SIZES),
    offset=st.integers(-90, 10),
    others=st.integers(0, 40),
    tail=st.integers(0, 200),
)
@example(secret="tok-Xy7-bearer-secret-0123456789", size=300, offset=-21, others=0, tail=50)
def test_no_piece_of_a_secret_survives_any_cut(
    answers, tmp_path_factory, secret, size, offset, others, tail
):
    redactor = Redactor([secret, OTHER])
    before = (OTHER + " ") * others
    pad = max(0, size + offset - len(before))
    answers.body = before + "a" * pad + secret + "z" * tail
    error, error_file, response_file = deliver(answers, redactor, tmp_path_factory.mktemp("f"))
    for where, text in [
        ("error", error),
        ("error file", error_file),
        ("response file", response_file),
    ]:
        assert not leaked(secret, text), f"{where} shows part of the secret"


@given(
    secret=st.text(SECRET_ALPHABET, min_size=RUN + 2, max_size=60),
    text=st.text(FILLER, max_size=400),
    at=st.integers(0, 400),
    limit=st.integers(0, 400),
    cut=st.booleans(),
)
def test_clip_never_leaves_the_start_of_a_secret_at_its_end(secret, text, at, limit, cut):
    at = min(at, len(text))
    whole = text[:at] + secret + text[at:]
    for start in range(0, len(whole) + 1, 7):  # `whole` itself cut anywhere, then clipped
        clipped = Redactor([secret]).clip(whole[:start], limit, cut=cut or start < len(whole))
        assert not leaked(secret, clipped)


# End to end: the run's own error line and error file


# No four digits in a row: a port or a time in the output could hold them by chance.
TOKEN = "tok-Xy7-bearer-secret-QZXJKWVYPM"


@pytest.mark.parametrize("position", [279, 1190, BODY_LIMIT - 10, BODY_LIMIT + 4090])
def test_a_token_echoed_at_a_cut_never_shows_in_the_run_output(tmp_path, position):
    body = "a" * position + f"you sent Bearer {TOKEN}" + "z" * 100
    with Server(lambda got: (400, {"Content-Type": "text/plain"}, body)) as server:
        config = {
            "url": server.url("/api"),
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "max_retries": 0,
            "fail_on_error": False,
            "error_file_path": str(tmp_path / "errors.jsonl"),
            "save_responses": True,
            "response_file_path": str(tmp_path / "responses"),
        }
        result = run_target(config, items_input(1), tmp_path)
    outputs = {
        "stderr": result.stderr,
        "error file": (tmp_path / "errors.jsonl").read_text(),
        "response file": next((tmp_path / "responses").iterdir()).read_text(),
    }
    assert json.loads(outputs["error file"])["status"] == 400
    for where, text in outputs.items():
        assert not leaked(TOKEN, text), f"{where} shows part of the token"


# A token that cannot go into a header


BAD_TOKENS = [  # letters that no word of the output holds four of in a row
    "QZX7-JKW9\r\nX-Injected: WQZK-7Y8J",
    "QZX7-JKW8\nWQZK-7Y8K",
    "QZX7 JKW7 WQZK 7Y8M",
    "QZX7-JKW6\x00WQZK-7Y8P",
    "QZX7-JKW5-é-WQZK-7Y8R",
]


@pytest.mark.parametrize("token", BAD_TOKENS, ids=range(len(BAD_TOKENS)))
def test_a_token_a_header_cannot_carry_ends_the_run_in_one_masked_line(tmp_path, token):
    def answer(got):
        if got.path.startswith("/token"):
            body = {"access_token": token, "token_type": "Bearer", "expires_in": 60}
            return 200, {"Content-Type": "application/json"}, json.dumps(body)
        return 200, {}, "ok"

    with Server(answer) as server:
        config = {
            "url": server.url("/api"),
            "auth_type": "oauth2_client_credentials",
            "oauth2_token_url": server.url("/token"),
            "oauth2_client_id": "client-7",
            "oauth2_client_secret": "cs-Oa7-client-secret",
            "max_retries": 0,
        }
        result = run_target(config, items_input(1), tmp_path)
        api_requests = server.to("/api")

    assert result.returncode == 1
    assert api_requests == []
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "access_token" in line]
    assert "cannot be sent in an HTTP header" in line
    assert not leaked(token, result.stderr + result.stdout)


# Passwords in the paths of the response and error files

PATH_PASSWORD = "pw-Path-Secret-3"


def test_a_password_in_the_response_file_path_never_shows(tmp_path):
    closed = Server()
    closed.close()  # nothing listens on its port any more
    folder = f"ftp://bob:{PATH_PASSWORD}@127.0.0.1:{closed.port}/responses"
    config = {"url": "http://127.0.0.1:1/api", "save_responses": True, "response_file_path": folder}
    result = run_target(config, items_input(1), tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"ftp://***@127.0.0.1:{closed.port}/responses" in result.stderr
    assert not leaked(PATH_PASSWORD, result.stderr + result.stdout)


@pytest.mark.parametrize(
    "path", [f"ftp://bob:{PATH_PASSWORD}@host/errors.jsonl", f"s3://key:{PATH_PASSWORD}@bucket/e"]
)
def test_a_password_in_the_error_file_path_never_shows(tmp_path, path):
    config = {"url": "http://127.0.0.1:1/api", "fail_on_error": False, "error_file_path": path}
    config["max_retries"] = 0
    result = run_target(config, items_input(1), tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "setting 'error_file_path'" in result.stderr
    assert path.replace(f"bob:{PATH_PASSWORD}", "***").replace(f"key:{PATH_PASSWORD}", "***") in (
        result.stderr
    )
    assert not leaked(PATH_PASSWORD, result.stderr + result.stdout)


def test_passwords_in_file_paths_are_known_secrets():
    config = {
        "url": "http://127.0.0.1/api",
        "error_file_path": f"ftp://bob:{PATH_PASSWORD}@host/e.jsonl",
        "streams": {"s": {"response_file_path": "s3://key:p%40ss-Word-2@bucket/r"}},
    }
    assert {PATH_PASSWORD, "p%40ss-Word-2", "p@ss-Word-2"} <= set(secrets_in(config))


def test_a_dry_run_never_shows_part_of_a_secret_its_body_cut(tmp_path):
    prefix = '{"id":1,"pad":"'
    head = prefix + "a" * (DRY_RUN_BODY_CHARS - 10 - len(prefix) - len('","t":"')) + '","t":"'
    record = head + TOKEN + '"}'
    assert record.index(TOKEN) == DRY_RUN_BODY_CHARS - 10  # the cut falls inside the token
    schema = {"type": "object", "properties": {"id": {}, "pad": {}, "t": {}}}
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": []}),
        '{"type": "RECORD", "stream": "s", "record": ' + record + "}",
    ]
    config = {"url": "http://127.0.0.1:1/api", "bearer_token": TOKEN, "dry_run": True}
    config["auth_type"] = "bearer"
    result = run_target(config, "\n".join(lines) + "\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dry run: stream 's' request 1" in result.stderr
    assert not leaked(TOKEN, result.stderr + result.stdout)
