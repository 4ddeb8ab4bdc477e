"""Error answers: stop with one clear line (fail_on_error true) or log and go on (false)."""

import socket

import pytest
from support.run import NO_RETRY, data_file, error_lines, run_target
from werkzeug import Response

USERS = data_file("users.singer")  # ids 1..5


def failing(ids, status=500, body="database on fire"):
    def respond(seen):
        payload = seen.json()
        records = payload if isinstance(payload, list) else [payload]
        if any(r["id"] in ids for r in records):
            return Response(body, status=status)
        return None

    return respond


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "INTERNAL SERVER ERROR"), (404, "NOT FOUND"), (422, "")]
)
def test_error_answer_stops_the_run_with_one_clear_line(
    recorder, httpserver, tmp_path, status, reason
):
    recorder.respond = failing({2}, status=status)
    result = run_target({"url": httpserver.url_for("/users"), **NO_RETRY}, USERS, tmp_path)
    assert result.returncode != 0
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 2]
    (line,) = error_lines(result.stderr, "database on fire")
    assert "'users'" in line
    assert "POST" in line
    assert httpserver.url_for("/users") in line
    assert str(status) in line
    assert reason.lower() in line.lower()
    assert "Traceback" not in result.stderr


def test_error_line_names_the_method_and_rendered_url(recorder, httpserver, tmp_path):
    recorder.respond = failing({3})
    config = {
        "url": httpserver.url_for("/users/#{id}"),
        "method": "PUT",
        "request_mode": "batch",
        "batch_size": 2,
        **NO_RETRY,
    }
    result = run_target(config, USERS, tmp_path)
    assert result.returncode != 0
    (line,) = error_lines(result.stderr, "database on fire")
    assert "PUT" in line
    assert httpserver.url_for("/users/3") in line


def test_error_line_holds_only_an_excerpt_of_a_long_answer(recorder, httpserver, tmp_path):
    body = "START " + "x" * 20_000 + " END-OF-BODY"
    recorder.respond = failing({1}, body=body)
    result = run_target({"url": httpserver.url_for("/users"), **NO_RETRY}, USERS, tmp_path)
    assert result.returncode != 0
    (line,) = error_lines(result.stderr, "START")
    assert "END-OF-BODY" not in result.stderr
    assert len(line) < 2_000


def test_error_line_hides_url_credentials(recorder, httpserver, tmp_path):
    recorder.respond = failing({1})
    url = httpserver.url_for("/users").replace("://", "://bob:hunter2pass@")
    result = run_target({"url": url, **NO_RETRY}, USERS, tmp_path)
    assert result.returncode != 0
    assert recorder.requests, "the request should have reached the server"
    (line,) = error_lines(result.stderr, "database on fire")
    assert "500" in line
    assert "/users" in line
    assert "hunter2pass" not in result.stderr
    assert "hunter2pass" not in result.stdout


def test_error_answer_with_default_settings_stops_the_run(recorder, httpserver, tmp_path):
    recorder.respond = failing({1}, status=404)  # 404 is never retried
    result = run_target({"url": httpserver.url_for("/users")}, USERS, tmp_path)
    assert result.returncode != 0
    assert [seen.json()["id"] for seen in recorder.requests] == [1]
    (line,) = error_lines(result.stderr, "database on fire")
    assert "404" in line


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def test_unreachable_endpoint_stops_the_run_naming_the_request(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/users"
    result = run_target({"url": url, **NO_RETRY}, USERS, tmp_path)
    assert result.returncode != 0
    (line,) = error_lines(result.stderr, "could not be sent")
    assert "'users'" in line
    assert f"POST {url}" in line


@pytest.mark.parametrize(
    "settings",
    [{"request_mode": "single"}, {"request_mode": "batch", "batch_size": 2}],
    ids=["single", "batch"],
)
def test_fail_on_error_false_goes_on_and_logs_the_failure(recorder, httpserver, tmp_path, settings):
    recorder.respond = failing({2})
    config = {"url": httpserver.url_for("/users"), "fail_on_error": False, **settings, **NO_RETRY}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    sent = []
    for seen in recorder.requests:
        body = seen.json()
        sent.extend(r["id"] for r in (body if isinstance(body, list) else [body]))
    assert sent == [1, 2, 3, 4, 5]
    (line,) = error_lines(result.stderr, "database on fire")
    assert "500" in line
    assert "'users'" in line


def test_fail_on_error_false_keeps_emitting_state(recorder, httpserver, tmp_path):
    recorder.respond = failing({2})
    config = {"url": httpserver.url_for("/users"), "fail_on_error": False, **NO_RETRY}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.states[-1] == {"bookmarks": {"users": {"id": 5}}}


def test_fail_on_error_per_stream(recorder, httpserver, tmp_path):
    def respond(seen):
        return Response("nope", status=500)

    recorder.respond = respond
    config = {
        "url": httpserver.url_for("/any"),
        "fail_on_error": False,
        # max_retries repeated here: see test_settings' test of inherited top-level settings.
        "streams": {"b": {"fail_on_error": True, **NO_RETRY}},
        **NO_RETRY,
    }
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode != 0
    # Stream a's failure is tolerated; the first record of stream b stops the run.
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 101]


# Only a 2xx answer is a delivery


def redirect_or_bare(seen):
    if seen.path == "/users":
        return Response("moved", status=302, headers={"Location": "/login"})
    if seen.path == "/see-other":
        return Response("see other", status=303, headers={"Location": "/login"})
    if seen.path == "/choices":
        return Response("pick one", status=300)
    return Response("<html>login page</html>", status=200)


@pytest.mark.parametrize("path", ["/users", "/see-other", "/choices"])
def test_an_answer_that_is_not_2xx_is_not_a_delivery(recorder, httpserver, tmp_path, path):
    # A 302/303 makes an HTTP client repeat the request as a bodiless GET elsewhere; a 200
    # from there (here a login page) says nothing about the record, which never arrived.
    recorder.respond = redirect_or_bare
    config = {"url": httpserver.url_for(path), **NO_RETRY}
    result = run_target(config, data_file("states_multiple.singer"), tmp_path)
    assert result.returncode != 0
    assert result.states == [{"bookmarks": {"users": {"id": 0}}}]
    posted = [seen for seen in recorder.requests if seen.method == "POST"]
    assert [seen.json()["id"] for seen in posted] == [1]
