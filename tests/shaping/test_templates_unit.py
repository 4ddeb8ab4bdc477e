"""`#{field}` templates as pure functions: parsing, rendering, percent-encoding."""

from decimal import Decimal
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_restapi.errors import RecordError
from target_restapi.templates import (
    Template,
    check_header_value,
    quote_url_value,
    render_url,
)


def test_parse_splits_literals_and_fields():
    template = Template.parse("https://api.test/t/#{tenant}/items/#{id}?v=1")
    assert template.fields == ("tenant", "id")
    assert template.literals == ("https://api.test/t/", "/items/", "?v=1")


def test_parse_without_placeholders_renders_the_text_as_is():
    template = Template.parse("https://api.test/items")
    assert template.fields == ()
    assert template.render({"id": 1}) == "https://api.test/items"


def test_render_fills_fields_and_nested_paths():
    template = Template.parse("#{a}-#{obj.b}-#{a}")
    assert template.render({"a": "x", "obj": {"b": "y"}}) == "x-y-x"


def test_a_field_whose_name_holds_a_dot_wins_over_the_nested_reading():
    template = Template.parse("#{a.b}")
    assert template.render({"a.b": "flat", "a": {"b": "nested"}}) == "flat"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (7, "7"),
        (True, "true"),
        (False, "false"),
        (Decimal("1234567890.123456789012"), "1234567890.123456789012"),
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
    ],
)
def test_render_spells_values_as_in_json(value, text):
    assert Template.parse("#{v}").render({"v": value}) == text


@pytest.mark.parametrize("record", [{"id": None}, {}, {"other": 1}])
def test_null_or_missing_value_is_a_record_error_never_none(record):
    with pytest.raises(RecordError) as info:
        render_url(Template.parse("https://api.test/items/#{id}"), record)
    message = str(info.value)
    assert "'id'" in message
    assert ("null" if "id" in record else "missing") in message


def test_null_nested_value_is_a_record_error():
    with pytest.raises(RecordError):
        Template.parse("/#{a.b}").render({"a": {"b": None}})


def test_render_url_percent_encodes_values_but_not_the_literal_text():
    template = Template.parse("https://api.test/items/#{id}?q=#{q}")
    url = render_url(template, {"id": "../admin?x=1", "q": "a&b=c d"})
    assert url == "https://api.test/items/..%2Fadmin%3Fx%3D1?q=a%26b%3Dc%20d"


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", "plain"),
        ("a/b", "a%2Fb"),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
        ("é", "%C3%A9"),
        ("", ""),
    ],
)
def test_quote_url_value(text, quoted):
    assert quote_url_value(text) == quoted


@given(st.text())
def test_any_value_stays_inside_its_path_segment(value):
    url = render_url(Template.parse("https://api.test/items/#{id}/sub"), {"id": value})
    parts = urlsplit(url)
    assert parts.query == ""
    assert parts.fragment == ""
    assert parts.path.startswith("/items/")
    assert parts.path.endswith("/sub")
    segment = parts.path[len("/items/") : -len("/sub")]
    for raw in "/?#":
        assert raw not in segment
    assert unquote(segment, errors="strict") == value


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nX-Injected: yes"])
def test_header_value_with_line_break_is_refused(value):
    with pytest.raises(RecordError) as info:
        check_header_value("X-Token", value)
    assert "X-Token" in str(info.value)


def test_header_value_without_line_break_passes():
    assert check_header_value("X-Token", "abc def") == "abc def"
