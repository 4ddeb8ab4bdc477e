"""batch and one modes group records by rendered URL and headers, each group in input order."""

import pytest
from support.run import data_file, run_target

TENANTS = data_file("tenants.singer")  # tenants a, b, a, b, a, a, b for ids 1..7


def sent(recorder, key):
    return [(key(seen), [record["id"] for record in seen.json()]) for seen in recorder.requests]


def test_batch_mode_groups_by_rendered_url(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/t/#{tenant}"),
        "request_mode": "batch",
        "batch_size": 2,
    }
    result = run_target(config, TENANTS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent(recorder, lambda seen: seen.raw_uri) == [
        ("/t/a", [1, 3]),
        ("/t/b", [2, 4]),
        ("/t/a", [5, 6]),
        ("/t/b", [7]),
    ]


def test_one_mode_sends_one_request_per_rendered_url(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/t/#{tenant}"), "request_mode": "one"}
    result = run_target(config, TENANTS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent(recorder, lambda seen: seen.raw_uri) == [
        ("/t/a", [1, 3, 5, 6]),
        ("/t/b", [2, 4, 7]),
    ]


def test_batch_mode_groups_by_rendered_headers(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/events"),
        "headers": {"X-Tenant": "#{tenant}"},
        "request_mode": "batch",
        "batch_size": 2,
    }
    result = run_target(config, TENANTS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent(recorder, lambda seen: seen.header("X-Tenant")) == [
        ("a", [1, 3]),
        ("b", [2, 4]),
        ("a", [5, 6]),
        ("b", [7]),
    ]


def test_one_mode_groups_by_rendered_headers(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/events"),
        "headers": {"X-Tenant": "#{tenant}", "X-Static": "same"},
        "request_mode": "one",
    }
    result = run_target(config, TENANTS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent(recorder, lambda seen: (seen.header("X-Tenant"), seen.header("X-Static"))) == [
        (("a", "same"), [1, 3, 5, 6]),
        (("b", "same"), [2, 4, 7]),
    ]


@pytest.mark.parametrize("mode", ["batch", "one"])
def test_records_with_the_same_url_and_headers_share_requests(recorder, httpserver, tmp_path, mode):
    config = {
        "url": httpserver.url_for("/events"),
        "headers": {"X-Static": "same"},
        "request_mode": mode,
        "batch_size": 3,
    }
    result = run_target(config, TENANTS, tmp_path)
    assert result.returncode == 0, result.stderr
    expected = [[1, 2, 3], [4, 5, 6], [7]] if mode == "batch" else [[1, 2, 3, 4, 5, 6, 7]]
    assert [ids for _, ids in sent(recorder, lambda seen: None)] == expected
