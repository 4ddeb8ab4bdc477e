"""Operating the target: dry run, progress lines, the run summary, --version."""

from __future__ import annotations

import json
import subprocess
import time

from support.run import TARGET, clean_env, data_file, run_target

USERS = "users.singer"


def test_dry_run_sends_nothing_and_shows_the_first_requests(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/users/#{id}"),
        "dry_run": True,
        "headers": {"Authorization": "Bearer dry-secret-token"},
    }
    result = run_target(config, data_file(USERS), tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.requests == []
    assert result.states == []  # nothing was delivered, so no STATE may move on
    shown = [
        line for line in result.stderr.splitlines() if "dry run: stream 'users' request" in line
    ]
    assert len(shown) == 5
    assert "POST http://" in shown[0] and "/users/1" in shown[0]
    assert '"id": 1' in shown[0] or '"id":1' in shown[0]
    assert "dry-secret-token" not in result.stderr
    assert "5 requests would have been sent (first 5 shown)" in result.stderr


def test_dry_run_shows_at_most_ten_requests_per_stream(recorder, httpserver, tmp_path):
    schema = {
        "type": "SCHEMA",
        "stream": "s",
        "schema": {"properties": {"id": {"type": "integer"}}},
    }
    lines = [json.dumps(schema)] + [
        json.dumps({"type": "RECORD", "stream": "s", "record": {"id": i}}) for i in range(25)
    ]
    config = {"url": httpserver.url_for("/s/#{id}"), "dry_run": True}
    result = run_target(config, "\n".join(lines) + "\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorder.requests == []
    assert result.stderr.count("dry run: stream 's' request") == 10
    assert "25 requests would have been sent (first 10 shown)" in result.stderr


def dry_run_lines(config: dict, tmp_path) -> list[str]:
    """The requests a dry run of users.singer shows; the server must get none."""
    result = run_target({**config, "dry_run": True}, data_file(USERS), tmp_path)
    assert result.returncode == 0, result.stderr
    return [
        line for line in result.stderr.splitlines() if "dry run: stream 'users' request" in line
    ]


def test_dry_run_shows_the_auth_and_signature_the_request_would_carry(
    recorder, httpserver, tmp_path
):
    config = {
        "url": httpserver.url_for("/users"),
        "auth_type": "api_key",
        "api_key_name": "key",
        "api_key_value": "dry-Key-4-secret",
        "api_key_location": "query",
        "hmac_secret": "dry-Hmac-5-secret",
    }
    shown = dry_run_lines(config, tmp_path)
    assert recorder.requests == []
    assert "/users?key=***" in shown[0]
    assert "'X-Signature': 'sha256=" in shown[0]
    bearer = dry_run_lines({**config, "auth_type": "bearer", "bearer_token": "dry-Tok-6"}, tmp_path)
    assert "'Authorization': '***'" in bearer[0]
    assert all("dry-" not in line for line in shown + bearer)


def test_dry_run_does_not_fetch_an_oauth2_token(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/users"),
        "auth_type": "oauth2_client_credentials",
        "oauth2_token_url": httpserver.url_for("/token"),
        "oauth2_client_id": "dry-client",
        "oauth2_client_secret": "dry-Client-7-secret",
    }
    shown = dry_run_lines(config, tmp_path)
    assert recorder.requests == []  # neither the API nor the token endpoint
    assert "'Authorization': '***'" in shown[0]


def test_dry_run_shows_a_gzip_body_decompressed(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users"), "compression": "gzip"}
    shown = dry_run_lines(config, tmp_path)
    assert recorder.requests == []
    assert "'Content-Encoding': 'gzip'" in shown[0]
    assert 'body={"id": 1' in shown[0] or 'body={"id":1' in shown[0]


def test_progress_lines_during_the_run_and_a_summary_at_the_end(recorder, httpserver, tmp_path):
    recorder.on_request = lambda seen: time.sleep(0.3)
    config = {"url": httpserver.url_for("/users/#{id}"), "progress_interval_seconds": 1}
    result = run_target(config, data_file(USERS), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "progress: " in result.stderr
    assert "summary of stream 'users': 5 records received, 5 delivered, 0 failed" in result.stderr
    summary = next(
        json.loads(line[line.index("{") :])
        for line in result.stderr.splitlines()
        if '{"summary"' in line
    )["summary"]
    assert summary["total"]["received"] == 5
    assert summary["total"]["delivered"] == 5
    assert summary["total"]["requests"] == 5
    assert summary["streams"]["users"]["failed"] == 0


def test_the_summary_counts_retries_and_failures(recorder, httpserver, tmp_path):
    answers = iter([503, 200, 500, 200])

    def respond(seen):
        from werkzeug import Response

        return Response("x", status=next(answers, 200))

    recorder.respond = respond
    config = {
        "url": httpserver.url_for("/users/#{id}"),
        "fail_on_error": False,
        "max_retries": 1,
        "max_backoff_seconds": 0.01,
        "retry_on_status": [503],
    }
    result = run_target(config, data_file(USERS), tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if '{"summary"' in line)
    total = json.loads(line[line.index("{") :])["summary"]["total"]
    assert total == {
        "received": 5,
        "delivered": 4,
        "failed": 1,
        "interrupted": 0,
        "not_sent": 0,
        "requests": 5,
        "retries": 1,
        "deletes": 0,
    }


def test_version_and_about():
    version = subprocess.run(
        [*TARGET, "--version"], capture_output=True, text=True, env=clean_env()
    )
    assert version.returncode == 0
    assert "target-restapi v" in version.stdout + version.stderr
    about = subprocess.run(
        [*TARGET, "--about", "--format=json"], capture_output=True, text=True, env=clean_env()
    )
    settings = set(json.loads(about.stdout)["settings"]["properties"])
    assert {"url", "dry_run", "progress_interval_seconds", "save_responses"} <= settings
