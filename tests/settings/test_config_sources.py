"""Where settings come from: --config files and TARGET_RESTAPI_* variables.

Variables are parsed strictly (booleans, integers, numbers, JSON), sources are merged key
by key, nulls mean "not set", unreadable files stop the run in one line, and no `.env`
file is read.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import singer_sdk
from hypothesis import given, settings
from hypothesis import strategies as st
from support.run import RUN_TIMEOUT, TARGET, Result, clean_env, data_file, parse_states, run_target

from target_restapi.errors import SettingsError
from target_restapi.settings.schema import CONFIG_SCHEMA
from target_restapi.settings.sources import FALSE, TRUE, deep_merge, from_environment, without_nulls

USERS = data_file("users.singer")
PREFIX = "TARGET_RESTAPI_"


def run_with(args: list[str], env: dict[str, str], input: bytes = b"") -> Result:
    """Run the target with these command-line arguments and environment."""
    proc = subprocess.run(
        [*TARGET, *args], input=input, capture_output=True, env=env, timeout=RUN_TIMEOUT
    )
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    return Result(
        proc.returncode, parse_states(stdout) if proc.returncode == 0 else [], stdout, stderr
    )


def one_error(result: Result) -> str:
    """The run failed with exactly one ERROR line and no traceback: that line."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


def write(tmp_path: Path, name: str, config: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


# Environment variables: parsed by the schema's type, unknown spellings refused


@settings(max_examples=120, deadline=None)
@given(
    st.one_of(st.sampled_from([*TRUE, *FALSE, "TRUE", "Off", "true ", "ture", "t", ""]), st.text())
)
def test_a_boolean_variable_is_a_known_spelling_or_refused(text):
    variable = PREFIX + "FAIL_ON_ERROR"
    try:
        parsed = from_environment(CONFIG_SCHEMA, PREFIX, {variable: text})
    except SettingsError as exc:
        assert text.lower() not in TRUE + FALSE
        assert variable in str(exc) and "true" in str(exc) and "\n" not in str(exc)
    else:
        assert parsed == {"fail_on_error": text.lower() in TRUE}
        assert text.lower() in TRUE + FALSE


@settings(max_examples=120, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_number_variables_take_decimal_text(number):
    env = {PREFIX + "TIMEOUT_SECONDS": repr(number), PREFIX + "BATCH_SIZE": repr(number)}
    whole = isinstance(number, int)

    if whole:
        parsed = from_environment(CONFIG_SCHEMA, PREFIX, env)
        assert (parsed["timeout_seconds"], parsed["batch_size"]) == (number, number)
    else:  # an integer setting refuses a fraction, in one line naming the variable
        with pytest.raises(SettingsError, match=PREFIX + "BATCH_SIZE") as refused:
            from_environment(CONFIG_SCHEMA, PREFIX, env)
        assert "\n" not in str(refused.value)
        env.pop(PREFIX + "BATCH_SIZE")
        assert from_environment(CONFIG_SCHEMA, PREFIX, env)["timeout_seconds"] == number


@settings(max_examples=120, deadline=None)
@given(st.text(max_size=8))
def test_a_number_variable_that_is_not_a_finite_number_is_refused(text):
    variable = PREFIX + "TIMEOUT_SECONDS"
    try:
        parsed = from_environment(CONFIG_SCHEMA, PREFIX, {variable: text})
    except SettingsError as exc:
        assert variable in str(exc) and "\n" not in str(exc)
        return
    number = parsed["timeout_seconds"]  # accepted: plain decimal text of a finite number
    assert text.strip() == text and "_" not in text and number == float(text)
    assert math.isfinite(number)


@pytest.mark.parametrize(
    ("spelling", "fails_the_run"),
    [("true", True), ("YES", True), ("1", True), ("false", False), ("Off", False), ("0", False)],
)
def test_boolean_spellings_from_the_environment(
    recorder, httpserver, tmp_path, spelling, fails_the_run
):
    from werkzeug import Response

    recorder.respond = lambda seen: Response("no", status=400)
    env = clean_env(TARGET_RESTAPI_FAIL_ON_ERROR=spelling)
    config = {"url": httpserver.url_for("/in"), "max_retries": 0}

    result = run_with(
        ["--config", write(tmp_path, "c.json", config), "--config", "ENV"],
        env,
        data_file("delivery_users.singer").read_bytes(),
    )

    assert (result.returncode == 1) == fails_the_run, result.stderr
    assert bool(result.states) != fails_the_run  # STATE moves on only when failures are allowed


@pytest.mark.parametrize("spelling", ["true ", "ture", "t", ""])
def test_an_unknown_boolean_spelling_stops_the_run_in_one_line(
    recorder, httpserver, tmp_path, spelling
):
    env = clean_env(TARGET_RESTAPI_FAIL_ON_ERROR=spelling)
    config = {"url": httpserver.url_for("/in")}

    result = run_with(
        ["--config", write(tmp_path, "c.json", config), "--config", "ENV"], env, USERS.read_bytes()
    )

    line = one_error(result)
    assert "TARGET_RESTAPI_FAIL_ON_ERROR" in line and "true" in line and "false" in line
    assert recorder.requests == []


def test_numbers_from_the_environment(recorder, httpserver, tmp_path):
    env = clean_env(
        TARGET_RESTAPI_URL=httpserver.url_for("/in"),
        TARGET_RESTAPI_TIMEOUT_SECONDS="2.5",
        TARGET_RESTAPI_MAX_REQUESTS_PER_SECOND="1000",
        TARGET_RESTAPI_BATCH_SIZE="2",
        TARGET_RESTAPI_REQUEST_MODE="batch",
    )

    result = run_with(["--config", "ENV"], env, USERS.read_bytes())

    assert result.returncode == 0, result.stderr
    assert [len(seen.json()) for seen in recorder.requests] == [2, 2, 1]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIMEOUT_SECONDS", "abc"),
        ("BATCH_SIZE", "2.5"),
        ("HEADERS", '{"X-Token": "sec'),
        ("HEADERS", "[1]"),
    ],
)
def test_a_bad_value_in_a_variable_stops_the_run_in_one_line(tmp_path, name, value):
    env = clean_env(TARGET_RESTAPI_URL="http://127.0.0.1:9/x", **{PREFIX + name: value})

    line = one_error(run_with(["--config", "ENV"], env))

    assert PREFIX + name in line
    assert "sec" not in line.partition(PREFIX + name)[2]  # JSON text is never quoted


# Merging: later sources win key by key, objects merged at every depth


def test_environment_objects_merge_into_the_file_key_by_key(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/top"),
        "headers": {"X-File": "f", "X-Both": "file"},
        "streams": {"users": {"method": "PUT"}},
    }
    env = clean_env(
        TARGET_RESTAPI_HEADERS=json.dumps({"X-Env": "e", "X-Both": "env"}),
        TARGET_RESTAPI_STREAMS=json.dumps({"users": {"url": httpserver.url_for("/people/#{id}")}}),
    )

    result = run_with(
        ["--config", write(tmp_path, "c.json", config), "--config", "ENV"], env, USERS.read_bytes()
    )

    assert result.returncode == 0, result.stderr
    first = recorder.requests[0]
    assert (first.method, first.path) == ("PUT", "/people/1")
    assert (first.header("X-File"), first.header("X-Env"), first.header("X-Both")) == (
        "f",
        "e",
        "env",
    )


def test_later_config_files_merge_over_earlier_ones(recorder, httpserver, tmp_path):
    base = {
        "url": httpserver.url_for("/in"),
        "headers": {"X-A": "1"},
        "streams": {"users": {"method": "PATCH"}},
    }
    over = {"headers": {"X-B": "2"}, "streams": {"users": {"request_mode": "one"}}}

    result = run_with(
        ["--config", write(tmp_path, "a.json", base), "--config", write(tmp_path, "b.json", over)],
        clean_env(),
        USERS.read_bytes(),
    )

    assert result.returncode == 0, result.stderr
    [seen] = recorder.requests
    assert (seen.method, seen.header("X-A"), seen.header("X-B")) == ("PATCH", "1", "2")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=10,
)
OBJECTS = st.dictionaries(st.sampled_from("abcd"), JSON, max_size=4)


@settings(max_examples=120, deadline=None)
@given(OBJECTS, OBJECTS)
def test_merging_keeps_every_key_and_the_later_leaf(base, over):
    merged = deep_merge(base, over)

    assert set(merged) == set(base) | set(over)
    for key, value in merged.items():
        if key not in over:
            assert value == base[key]
        elif isinstance(over[key], dict) and isinstance(base.get(key), dict):
            assert value == deep_merge(base[key], over[key])
        else:
            assert value == over[key]


# Files that cannot be read


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("  \n", "is empty"),
        ('{"url": "http://x/", ', "not valid JSON"),
        ('["http://x/"]', "JSON array"),
        (b"\xff\xfe{}", "UTF-8"),
    ],
)
def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path, content, expected):
    path = tmp_path / "settings.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)

    line = one_error(run_with(["--config", str(path)], clean_env()))

    assert str(path) in line and expected in line


def test_a_folder_as_config_file_is_one_line(tmp_path):
    line = one_error(run_with(["--config", str(tmp_path)], clean_env()))

    assert str(tmp_path) in line and "folder" in line


# null means "not set"


@settings(max_examples=120, deadline=None)
@given(OBJECTS, st.sampled_from(["headers", "ssh_tunnel", "field_mappings", "static_fields"]))
def test_nulls_are_dropped_except_where_null_is_data(value, name):
    config = {"method": None, name: value, "streams": {"users": {name: value, "url": None}}}

    cleaned = without_nulls(config)

    def nulls(x) -> bool:
        if isinstance(x, dict):
            return any(v is None or nulls(v) for v in x.values())
        return isinstance(x, list) and any(nulls(v) for v in x)

    assert "method" not in cleaned and "url" not in cleaned["streams"]["users"]
    if name == "static_fields":
        assert cleaned[name] == value and cleaned["streams"]["users"][name] == value
    else:
        assert not nulls(cleaned)


def test_null_settings_are_not_set(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/in"),
        "method": None,
        "batch_size": None,
        "headers": {"X-A": "1", "X-Null": None},
        "ssh_tunnel": None,
        "static_fields": {"deleted_at": None},  # a body constant: null is a value here
        "streams": {"users": {"method": None, "request_mode": None, "url": None}, "other": None},
    }

    result = run_target(config, USERS, tmp_path)

    assert result.returncode == 0, result.stderr
    first = recorder.requests[0]
    assert (first.method, first.path) == ("POST", "/in")
    assert first.header("X-A") == "1" and first.header("X-Null") is None
    assert first.json()["deleted_at"] is None
    assert len(recorder.requests) == 5  # single mode: the default, not null


def test_a_null_in_a_later_source_does_not_unset_an_earlier_value(recorder, httpserver, tmp_path):
    base = {"url": httpserver.url_for("/in"), "method": "PUT"}
    over = {"method": None}

    result = run_with(
        ["--config", write(tmp_path, "a.json", base), "--config", write(tmp_path, "b.json", over)],
        clean_env(),
        USERS.read_bytes(),
    )

    assert result.returncode == 0, result.stderr
    assert {seen.method for seen in recorder.requests} == {"PUT"}


# .env files


def test_no_dotenv_file_is_read(recorder, httpserver, tmp_path):
    """The SDK reads the first .env walking up from its own folder (so a Meltano project's,
    or a repository's around a venv); only the process environment counts here.

    A symlink puts the SDK under a folder whose .env the SDK finds; the SDK's own parser
    shows that it would read it, the target shows that it does not.
    """
    site = tmp_path / "site"
    site.mkdir()
    (site / "singer_sdk").symlink_to(Path(singer_sdk.__file__).parent)
    wrong = httpserver.url_for("/from-dotenv")
    (site / ".env").write_text(f"TARGET_RESTAPI_URL={wrong}\nTARGET_RESTAPI_METHOD=DELETE\n")
    env = clean_env(PYTHONPATH=str(site))
    probe = tmp_path / "probe.py"  # a script: with -c, python-dotenv would search the cwd
    probe.write_text(
        "from singer_sdk.configuration._dict_config import parse_environment_config as p\n"
        "print(p({'properties': {'url': {'type': 'string'}}}, 'TARGET_RESTAPI_')['url'])\n"
    )
    sdk_reads = subprocess.run(
        [sys.executable, str(probe)],
        capture_output=True,
        env=env,
        timeout=RUN_TIMEOUT,
        check=True,
    )
    assert sdk_reads.stdout.decode().strip() == wrong  # the trap is real

    config = {"url": httpserver.url_for("/in")}
    result = run_with(
        ["--config", write(tmp_path, "c.json", config), "--config", "ENV"], env, USERS.read_bytes()
    )

    assert result.returncode == 0, result.stderr
    assert {(seen.method, seen.path) for seen in recorder.requests} == {("POST", "/in")}
