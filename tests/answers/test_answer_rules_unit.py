"""The answer rules alone (target_restapi/delivery/answers.py): compiling and judging."""

from __future__ import annotations

import json

import pytest

from target_restapi.delivery.answers import ANSWER_BYTES, compile_rules
from target_restapi.errors import SettingsError


def rules(mode: str = "batch", **values):
    return compile_rules(values, "settings", request_mode=mode)


def judge(body, records: int = 1, *, complete: bool = True, **values):
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    return rules(**values).judge(text, complete, records)


@pytest.mark.parametrize(
    ("setting", "text", "position"),
    [
        ("success_condition", "ok ==", 6),
        ("item_results", "items[", 7),
        ("item_success_condition", "status < `300", 10),
        ("success_condition", "a b", 3),
        ("success_condition", "ok$", 3),
    ],
)
def test_a_syntax_error_names_the_setting_and_the_position(setting, text, position):
    values = {setting: text}
    if setting == "item_success_condition":
        values["item_results"] = "items"
    with pytest.raises(SettingsError) as caught:
        rules(**values)
    message = str(caught.value)
    assert message.startswith(f"settings: setting '{setting}' is not a valid JMESPath")
    assert f"at character {position} " in message
    assert "\n" not in message


def test_a_response_field_with_a_syntax_error_is_named_with_its_output_name():
    with pytest.raises(SettingsError, match=r"setting 'response_fields.remote_id' is not a valid"):
        rules(mode="single", response_fields={"remote_id": "id["})


def test_response_fields_in_batch_mode_need_item_results():
    with pytest.raises(SettingsError, match=r"request_mode 'batch' needs 'item_results'"):
        rules(mode="batch", response_fields={"remote_id": "id"})
    assert rules(mode="single", response_fields={"remote_id": "id"}).fields


def test_item_success_condition_needs_item_results():
    with pytest.raises(SettingsError, match=r"'item_success_condition' needs 'item_results'"):
        rules(item_success_condition="ok")


def test_a_response_field_may_not_take_a_column_name():
    with pytest.raises(SettingsError, match=r"names 'status', a column"):
        rules(item_results="items", response_fields={"status": "status"})


@pytest.mark.parametrize("answer", [{"ok": False}, {"ok": None}, {}, {"other": 1}])
def test_a_false_or_null_condition_fails_the_request(answer):
    verdict = judge(answer, success_condition="ok")
    said = "false" if answer.get("ok") is False else "null"
    assert verdict.failure == f"success_condition 'ok' gave {said}"


@pytest.mark.parametrize("answer", [{"ok": True}, {"ok": 0}, {"ok": ""}, {"ok": []}, {"ok": "yes"}])
def test_anything_but_false_or_null_passes(answer):
    assert judge(answer, success_condition="ok").failure is None


def test_graphql_errors_and_success_false_styles():
    condition = "errors == null"
    assert judge({"data": {}}, success_condition=condition).failure is None
    assert judge({"errors": [{"message": "x"}]}, success_condition=condition).failure
    assert judge({"success": False}, success_condition="success").failure


def test_an_answer_that_is_not_json_fails_when_a_condition_is_set():
    verdict = judge(b"<html>ok</html>", success_condition="ok")
    assert verdict.failure == "its answer is not JSON, so success_condition cannot be read"
    verdict = judge(b"", 2, item_results="items")
    assert verdict.failure == "its answer is not JSON, so item_results cannot be read"


def test_without_conditions_an_answer_that_is_not_json_only_leaves_the_fields_null():
    verdict = judge(b"created", mode="single", response_fields={"id": "id"})
    assert verdict.failure is None
    assert verdict.fields == [None]


def test_an_answer_larger_than_what_is_read_fails_a_condition_with_the_reason():
    verdict = judge({"ok": True}, complete=False, success_condition="ok")
    size = ANSWER_BYTES // 2**20
    assert verdict.failure == f"its answer is larger than {size} MiB, too large to judge"


@pytest.mark.parametrize(
    ("answer", "got"),
    [
        ({"items": [{}, {}]}, "a list of 2 entries"),
        ({"items": None}, "null"),
        ({"items": {"a": 1}}, '{"a":1}'),
        ({}, "null"),
    ],
)
def test_item_results_of_another_length_fail_the_whole_request(answer, got):
    verdict = judge(answer, 3, item_results="items")
    assert verdict.failure == f"item_results 'items' gave {got}, not one entry per record (3)"


def test_failed_items_are_listed_in_order_with_fields_per_entry():
    items = [{"id": "a", "status": 201}, {"id": "b", "status": 409}, {"id": "c", "error": "x"}]
    verdict = judge(
        {"items": items},
        3,
        item_results="items",
        item_success_condition="status < `300`",
        response_fields={"remote_id": "id", "code": "status"},
    )
    assert verdict.failure is None
    # A missing status compares as null: the third entry fails too.
    assert verdict.failed == [1, 2]
    assert verdict.fields == [
        {"remote_id": "a", "code": 201},
        {"remote_id": "b", "code": 409},
        {"remote_id": "c", "code": None},
    ]


def test_a_function_given_the_wrong_type_reads_as_null():
    answer = {"items": [{"n": "x"}]}
    verdict = judge(answer, 1, item_results="items", item_success_condition="abs(n)")
    assert verdict.failed == [0]


def test_the_success_condition_is_checked_before_the_items():
    verdict = judge(
        {"errors": True, "items": []}, 2, success_condition="!errors", item_results="items"
    )
    assert verdict.failure == "success_condition '!errors' gave false"


def test_shown_lists_the_settings_in_force():
    shown = rules(
        success_condition="ok",
        item_results="items",
        item_success_condition="error == null",
        response_fields={"remote_id": "id"},
        retry_on_condition=True,
    ).shown()
    assert shown == (
        "success_condition 'ok'; item_results 'items'; item_success_condition 'error == null'; "
        "response_fields remote_id='id'; retry_on_condition true"
    )
    assert not rules().active
