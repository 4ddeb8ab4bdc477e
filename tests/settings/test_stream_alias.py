"""Streams renamed or copied by stream_maps keep the `streams` entry of their source.

The renamed stream's own entry, when there is one, is laid over the source's entry.
"""

from __future__ import annotations

import base64

import pytest
from support.run import data_file, run_target

USERS = data_file("users.singer")  # stream `users`, records 1..5


def auth_of(seen) -> str | None:
    return seen.header("Authorization")


def test_an_alias_takes_the_source_streams_entry(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/top"),
        "stream_maps": {"users": {"__alias__": "people"}},
        "streams": {
            "users": {
                "url": httpserver.url_for("/users/#{id}"),
                "method": "PUT",
                "auth_type": "bearer",
                "bearer_token": "tok-users",
            }
        },
    }

    result = run_target(config, USERS, tmp_path)

    assert result.returncode == 0, result.stderr
    got = [(seen.method, seen.path, auth_of(seen)) for seen in recorder.requests]
    assert got == [("PUT", f"/users/{i}", "Bearer tok-users") for i in range(1, 6)]


def test_the_alias_entry_wins_setting_by_setting(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/top"),
        "stream_maps": {"users": {"__alias__": "people", "name": "name.upper()"}},
        "streams": {
            "users": {
                "url": httpserver.url_for("/users"),
                "auth_type": "bearer",
                "bearer_token": "tok-u",
            },
            "people": {"url": httpserver.url_for("/people")},
        },
    }

    result = run_target(config, USERS, tmp_path)

    assert result.returncode == 0, result.stderr
    assert {(seen.path, auth_of(seen)) for seen in recorder.requests} == {
        ("/people", "Bearer tok-u")
    }
    assert recorder.requests[0].json()["name"] == "ADA"


def test_a_copy_by_source_takes_the_source_entry_and_its_own(recorder, httpserver, tmp_path):
    token = base64.b64encode(b"u:pw-secret").decode()
    config = {
        "url": httpserver.url_for("/top"),
        "stream_maps": {"copy": {"__source__": "users"}},
        "streams": {
            "users": {
                "url": httpserver.url_for("/users"),
                "auth_type": "basic",
                "username": "u",
                "password": "pw-secret",
            },
            "copy": {"url": httpserver.url_for("/copy")},
        },
    }

    result = run_target(config, USERS, tmp_path)

    assert result.returncode == 0, result.stderr
    by_path = {}
    for seen in recorder.requests:
        by_path.setdefault(seen.path, set()).add(auth_of(seen))
    assert by_path == {"/users": {f"Basic {token}"}, "/copy": {f"Basic {token}"}}


def test_two_sources_with_entries_for_one_alias_are_refused(recorder, httpserver, tmp_path):
    lines = USERS.read_text() + USERS.read_text().replace('"users"', '"staff"')
    config = {
        "url": httpserver.url_for("/top"),
        "stream_maps": {"users": {"__alias__": "all"}, "staff": {"__alias__": "all"}},
        "streams": {"users": {"method": "PUT"}, "staff": {"method": "PATCH"}},
    }

    result = run_target(config, lines, tmp_path)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "stream 'all'" in errors[0] and "streams.all" in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "maps", [{"users": {"__alias__": "people"}}, {"*": {"__alias__": "__stream_name__ + '_v2'"}}]
)
def test_a_stream_without_an_entry_uses_the_top_level(recorder, httpserver, tmp_path, maps):
    config = {
        "url": httpserver.url_for("/top"),
        "stream_maps": maps,
        "streams": {"orders": {"url": "http://127.0.0.1:9/x"}},
    }

    result = run_target(config, USERS, tmp_path)

    assert result.returncode == 0, result.stderr
    assert {seen.path for seen in recorder.requests} == {"/top"}
