"""The hard-delete settings at start-up: what is refused, what is warned, what is declared.

hard_delete, delete_url, delete_method and delete_payload are request settings (top level
and per stream). Combinations that make no sense are refused with one line before any
input is read; delete settings that would do nothing are a warning.
"""

from __future__ import annotations

import json

import pytest
from support.run import run_target

from target_restapi.errors import SettingsError
from target_restapi.settings.schema import CONFIG_SCHEMA
from target_restapi.settings.streams import check_all, resolve
from target_restapi.target import TargetRestApi

URL = "http://127.0.0.1:9/users"
SCHEMA = {
    "type": "SCHEMA",
    "stream": "users",
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "_sdc_deleted_at": {"type": ["null", "string"]},
        },
    },
    "key_properties": ["id"],
}


def refusal(config: dict, stream: str = "") -> str:
    with pytest.raises(SettingsError) as caught:
        check_all(config) if not stream else resolve(config, stream)
    return str(caught.value)


def test_the_settings_are_declared_at_the_top_level_and_per_stream():
    per_stream = CONFIG_SCHEMA["properties"]["streams"]["additionalProperties"]["properties"]
    for properties in (CONFIG_SCHEMA["properties"], per_stream):
        assert {"hard_delete", "delete_url", "delete_method", "delete_payload"} <= set(properties)
    top = CONFIG_SCHEMA["properties"]
    assert top["hard_delete"]["default"] is False
    assert top["delete_method"]["default"] == "DELETE"
    assert set(top["delete_method"]["enum"]) == {"GET", "POST", "PUT", "PATCH", "DELETE"}


def test_defaults_send_a_bodiless_delete_to_the_url():
    deletes = resolve({"url": URL + "/#{id}", "hard_delete": True}, "").deletes

    assert deletes is not None
    assert (deletes.url.text, deletes.method, deletes.payload) == (URL + "/#{id}", "DELETE", None)
    assert resolve({"url": URL}, "").deletes is None  # soft delete by default


def test_a_stream_can_turn_hard_delete_on_alone():
    config = {"url": URL, "streams": {"users": {"hard_delete": True}}}

    assert resolve(config, "users").deletes is not None
    assert resolve(config, "orders").deletes is None


def test_hard_delete_with_request_mode_one_is_refused_before_any_input(tmp_path):
    config = {"url": URL, "request_mode": "one", "hard_delete": True}

    result = run_target(config, b"this is not json\n", tmp_path)

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "hard_delete cannot be used with request_mode 'one'" in errors[0]
    assert "request_mode 'batch'" in errors[0]
    assert "input line" not in result.stderr
    assert "Traceback" not in result.stderr


def test_the_refusal_names_the_stream():
    config = {"url": URL, "streams": {"users": {"request_mode": "one", "hard_delete": True}}}

    assert refusal(config).startswith("stream 'users': hard_delete cannot be used")


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"delete_url": "/users/#{id}"}, "setting 'delete_url' is a path without scheme"),
        ({"delete_url": "ftp://host/x"}, "setting 'delete_url' uses ftp://"),
        (
            {"delete_url": "https://#{host}/users"},
            "setting 'delete_url' puts #{host} in the scheme, host",
        ),
        (
            {"delete_url": "https://127.0.0.1/users/#{*}"},
            "setting 'delete_url' uses #{*}, the whole record",
        ),
        ({"delete_method": "PURGE"}, "setting 'delete_method' is 'PURGE'; use one of"),
        (
            {"delete_method": "GET", "delete_payload": '{"id": "#{id}"}'},
            "setting 'delete_payload' cannot be sent with delete_method GET",
        ),
        ({"delete_payload": '{"id": #{id}}'}, "delete_payload has #{id} outside quotes"),
        ({"delete_payload": "{"}, "delete_payload is not valid JSON"),
        (
            {"body_format": "csv", "delete_payload": "#{id};#{name}"},
            "setting 'delete_payload' separates #{id} and #{name} with ';'",
        ),
    ],
)
def test_bad_delete_settings_are_refused_with_one_line(settings, expected):
    problem = refusal({"url": URL, "hard_delete": True, **settings})

    assert expected in problem, problem
    assert "\n" not in problem


def test_delete_settings_are_not_checked_while_hard_delete_is_off_but_warned_about():
    config = {"url": URL, "delete_url": "/users/#{id}", "delete_method": "PUT"}

    [warning] = check_all(config)

    assert "'delete_url', 'delete_method' have no effect until 'hard_delete' is true" in warning


def test_top_level_delete_settings_a_stream_uses_are_not_warned_about():
    config = {
        "url": URL,
        "delete_url": URL + "/#{id}",
        "streams": {"users": {"hard_delete": True}, "orders": {"delete_method": "POST"}},
    }

    [warning] = check_all(config)

    assert warning.startswith("stream 'orders': 'delete_method' has no effect")


def test_hard_delete_is_no_longer_an_unused_sdk_setting(tmp_path):
    result = run_target({"url": URL, "hard_delete": False}, b"", tmp_path)

    assert result.returncode == 0, result.stderr
    assert "hard_delete" not in result.stderr


@pytest.mark.parametrize(
    "settings, setting, field",
    [
        ({"delete_url": URL + "/#{uuid}"}, "delete_url", "uuid"),
        ({"delete_payload": '{"who": "#{email}"}'}, "delete_payload", "email"),
    ],
)
def test_delete_templates_are_checked_against_the_schema(tmp_path, settings, setting, field):
    config = {"url": URL, "hard_delete": True, **settings}

    result = run_target(config, json.dumps(SCHEMA) + "\n", tmp_path)

    assert result.returncode == 1
    assert (
        f"stream 'users': setting '{setting}' uses #{{{field}}}, which the SCHEMA does not declare"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_delete_template_may_use_the_deleted_at_mark(tmp_path):
    # The SDK removes _sdc_* properties from the SCHEMA it hands on; the tap's count here.
    config = {"url": URL, "hard_delete": True, "delete_payload": '{"at": "#{_sdc_deleted_at}"}'}

    result = run_target(config, json.dumps(SCHEMA) + "\n", tmp_path)

    assert result.returncode == 0, result.stderr


def test_about_names_the_hard_delete_capability():
    assert "hard-delete" in [str(c) for c in TargetRestApi.capabilities]
    assert "soft-delete" not in [str(c) for c in TargetRestApi.capabilities]
