"""Body-shaping settings given per stream under `streams` apply to that stream only."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from support.run import data_file, run_target
from support.shaping import MODES, csv_rows, form_pairs, json_records, mode_settings

TWO = "shaping_two_streams.singer"
USERS = [{"id": 1, "name": 'Ada, "A"'}, {"id": 2, "name": "Grace"}]
ORDERS = [
    {"order_id": 10, "total": Decimal("19.90"), "customer": {"email": "ada@example.com"}},
    {"order_id": 11, "total": 5, "customer": {"email": "grace@example.com"}},
]


def orders_csv(rows, *, header=True):
    expected = [["10", "19.90", '{"email":"ada@example.com"}']]
    expected += [["11", "5", '{"email":"grace@example.com"}']]
    data = [row for row in rows if row != ["order_id", "total", "customer"]]
    assert data == expected
    assert (["order_id", "total", "customer"] in rows) is header


OVERRIDES = {
    "body_format": (
        {"body_format": "csv"},
        lambda seen, mode: orders_csv([r for s in seen for r in csv_rows(s)]),
    ),
    "set_field_name": (
        {"body_format": "csv", "set_field_name": False},
        lambda seen, mode: orders_csv([r for s in seen for r in csv_rows(s)], header=False),
    ),
    "custom_payload": (
        {"custom_payload": '{"ref": "#{order_id}", "mail": "to: #{customer.email}"}'},
        lambda seen, mode: (
            _json(seen, mode)
            == [
                {"ref": 10, "mail": "to: ada@example.com"},
                {"ref": 11, "mail": "to: grace@example.com"},
            ]
        ),
    ),
    "nested": (
        {"send_as_nested_attribute": True, "nested_attribute_name": "orders"},
        lambda seen, mode: _json(seen, mode, "orders") == ORDERS,
    ),
    "static_fields": (
        {"static_fields": {"shop": "eu"}},
        lambda seen, mode: _json(seen, mode) == [{"shop": "eu", **o} for o in ORDERS],
    ),
    "urlencoded": (
        {"body_format": "urlencoded"},
        lambda seen, mode: (
            [v for s in seen for _, v in form_pairs(s)]
            == ["10", "19.90", "ada@example.com", "11", "5", "grace@example.com"]
        ),
    ),
}


def _json(seen, mode, nested=None):
    return json_records(
        [json.loads(s.body, parse_float=Decimal) for s in seen], mode=mode, nested=nested
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("override", list(OVERRIDES))
def test_a_stream_override_shapes_only_that_stream(recorder, httpserver, tmp_path, mode, override):
    settings, check = OVERRIDES[override]
    config = {
        "url": httpserver.url_for("/users"),
        **mode_settings(mode),
        "streams": {"orders": {"url": httpserver.url_for("/orders"), **settings}},
    }
    result = run_target(config, data_file(TWO), tmp_path)
    assert result.returncode == 0, result.stderr
    users = [s for s in recorder.requests if s.path == "/users"]
    orders = [s for s in recorder.requests if s.path == "/orders"]
    assert _json(users, mode) == USERS  # the top-level defaults: JSON records as sent
    assert all(s.header("Content-Type") == "application/json" for s in users)
    assert check(orders, mode) is not False


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_can_return_to_the_defaults(recorder, httpserver, tmp_path, mode):
    config = {
        "url": httpserver.url_for("/users"),
        **mode_settings(mode),
        "body_format": "csv",
        "streams": {"orders": {"url": httpserver.url_for("/orders"), "body_format": "json"}},
    }
    result = run_target(config, data_file(TWO), tmp_path)
    assert result.returncode == 0, result.stderr
    orders = [s for s in recorder.requests if s.path == "/orders"]
    users = [s for s in recorder.requests if s.path == "/users"]
    assert _json(orders, mode) == ORDERS
    rows = [r for s in users for r in csv_rows(s) if r != ["id", "name"]]
    assert rows == [["1", 'Ada, "A"'], ["2", "Grace"]]
