"""Request body per mode, HTTP method, Content-Type, and Basic auth."""

import base64
import json

import pytest
from support.run import data_file, run_target

USERS = data_file("users.singer")  # ids 1..5


def run(httpserver, tmp_path, **settings):
    config = {"url": httpserver.url_for("/users"), **settings}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    return result


# Body per request mode


def test_single_mode_sends_each_record_as_a_json_object(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path)
    assert recorder.bodies == [
        {"id": 1, "name": "Ada", "updated_at": "2024-01-02T03:04:05Z"},
        {"id": 2, "name": "Grace", "updated_at": "2024-01-03T10:00:00Z"},
        {"id": 3, "name": "Katherine", "updated_at": "2024-01-04T00:00:00Z"},
        {"id": 4, "name": "Dorothy", "updated_at": "2024-01-05T00:00:00Z"},
        {"id": 5, "name": "Mary", "updated_at": "2024-01-06T00:00:00Z"},
    ]


def test_batch_mode_sends_arrays_of_batch_size_records(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path, request_mode="batch", batch_size=2)
    assert [[r["id"] for r in body] for body in recorder.bodies] == [[1, 2], [3, 4], [5]]
    assert recorder.bodies[0][0] == {"id": 1, "name": "Ada", "updated_at": "2024-01-02T03:04:05Z"}


def test_one_mode_sends_all_records_of_a_stream_in_one_array(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path, request_mode="one", batch_size=2)
    (body,) = recorder.bodies
    assert isinstance(body, list)
    assert [r["id"] for r in body] == [1, 2, 3, 4, 5]


def test_one_mode_sends_one_request_per_stream(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/all"), "request_mode": "one"}
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    ids = sorted([r["id"] for r in body] for body in recorder.bodies)
    assert ids == [[1, 2, 3], [101, 102, 103]]


# Method


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_method_setting_is_used_and_carries_the_body(recorder, httpserver, tmp_path, method):
    run(httpserver, tmp_path, method=method, request_mode="batch", batch_size=5)
    (seen,) = recorder.requests
    assert seen.method == method
    assert [r["id"] for r in seen.json()] == [1, 2, 3, 4, 5]


def test_post_is_the_default_method(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path)
    assert {seen.method for seen in recorder.requests} == {"POST"}


def test_get_sends_no_body(recorder, httpserver, tmp_path):
    # GET in batch and one modes is refused at start-up (tests/settings/test_settings_checks.py).
    url = httpserver.url_for("/users/#{id}")
    run(httpserver, tmp_path, method="GET", url=url, request_mode="single")
    assert [seen.method for seen in recorder.requests] == ["GET"] * 5
    assert all(seen.body == b"" for seen in recorder.requests)
    assert all(seen.header("Content-Length") in (None, "0") for seen in recorder.requests)
    assert all(seen.header("Transfer-Encoding") is None for seen in recorder.requests)
    assert [seen.raw_uri for seen in recorder.requests] == [f"/users/{i}" for i in range(1, 6)]


# Content-Type


@pytest.mark.parametrize("mode", ["single", "batch", "one"])
def test_content_type_is_json_by_default(recorder, httpserver, tmp_path, mode):
    run(httpserver, tmp_path, request_mode=mode)
    assert {seen.header("Content-Type") for seen in recorder.requests} == {"application/json"}


@pytest.mark.parametrize("name", ["Content-Type", "content-type"])
def test_content_type_in_headers_overrides_the_default(recorder, httpserver, tmp_path, name):
    run(httpserver, tmp_path, headers={name: "application/vnd.api+json", "X-Other": "1"})
    for seen in recorder.requests:
        content_types = [v for k, v in seen.headers.items() if k.lower() == "content-type"]
        assert content_types == ["application/vnd.api+json"]
        assert seen.header("X-Other") == "1"
        json.loads(seen.body)


def test_static_headers_are_sent_with_every_request(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path, headers={"X-Api-Version": "2024-01"}, request_mode="batch")
    assert [seen.header("X-Api-Version") for seen in recorder.requests] == ["2024-01"]


# Basic auth


def test_basic_auth_sends_the_credentials(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path, auth_type="basic", username="alice", password="s3cr3t:pw")
    expected = "Basic " + base64.b64encode(b"alice:s3cr3t:pw").decode()
    assert [seen.header("Authorization") for seen in recorder.requests] == [expected] * 5


def test_no_authorization_header_without_auth(recorder, httpserver, tmp_path):
    run(httpserver, tmp_path, username="alice", password="s3cr3t")
    assert len(recorder.requests) == 5
    assert all(seen.header("Authorization") is None for seen in recorder.requests)
