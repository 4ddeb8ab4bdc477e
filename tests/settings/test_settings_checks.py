"""Settings checked at start-up: unknown names, URL form, GET with batches, missing file
system drivers, the schema's own errors in one line, and settings that would do nothing."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.run import RUN_TIMEOUT, TARGET, clean_env, data_file, run_target

from target_restapi.settings.checks import url_problem
from target_restapi.settings.names import unknown_settings
from target_restapi.settings.schema import CONFIG_SCHEMA
from target_restapi.target import TargetRestApi

USERS = data_file("users.singer")
# The first input line is not JSON: a run that read input before checking its settings
# would complain about line 1 instead of naming the setting.
BAD_INPUT_AFTER_SETTINGS = b"this is not json\n" + USERS.read_bytes()


def final_schema() -> dict:
    """The settings schema as `--about` shows it: the target's and the SDK's built-ins."""
    schema = TargetRestApi.config_jsonschema
    TargetRestApi.append_builtin_config(schema)
    return schema


TOP_LEVEL = sorted(final_schema()["properties"])
PER_STREAM = sorted(CONFIG_SCHEMA["properties"]["streams"]["additionalProperties"]["properties"])


def lines(stderr: str, level: str) -> list[str]:
    return [line for line in stderr.splitlines() if f"| {level}" in line]


def refused(result, *expected: str) -> str:
    """The run stopped before reading input, with one ERROR line holding `expected`."""
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    assert "line 1" not in result.stderr, "settings are checked before any input is read"
    (error,) = lines(result.stderr, "ERROR")
    for text in expected:
        assert text in error, error
    return error


def warned(result, *expected: str) -> str:
    """The run went on and logged one WARNING line holding `expected`."""
    assert result.returncode == 0, result.stderr
    found = [line for line in lines(result.stderr, "WARNING") if expected[0] in line]
    assert len(found) == 1, result.stderr
    for text in expected:
        assert text in found[0], found[0]
    return found[0]


# 1. Unknown setting names


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bodyformat": "csv"}, "'bodyformat' is not a setting; did you mean 'body_format'?"),
        ({"Request_Mode": "batch"},
         "'Request_Mode' is not a setting; did you mean 'request_mode'?"),
        ({"batch-size": 2}, "'batch-size' is not a setting; did you mean 'batch_size'?"),
        ({"streams": {"users": {"requestmode": "batch"}}},
         "'streams.users.requestmode' is not a setting; did you mean 'request_mode'?"),
        ({"streams": {"users": {"dry_run": True}}},
         "'streams.users.dry_run' is a top-level setting only; move 'dry_run' out of"),
        ({"zzzzzz": 1},
         "'zzzzzz' is not a setting; see the settings with `target-restapi --about`"),
    ],
    ids=["top-level", "case", "dash", "stream", "top-level-only-in-stream", "no-close-name"],
)  # fmt: skip
def test_an_unknown_setting_stops_the_run_naming_the_closest_name(
    recorder, httpserver, tmp_path, settings, message
):
    config = {"url": httpserver.url_for("/users"), **settings}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    refused(result, message)
    assert recorder.requests == []


def test_the_sdks_own_settings_are_accepted(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/users"),
        "stream_maps": {"users": {"__alias__": "users"}},
        "stream_map_config": {"any": "value"},
        "faker_config": {"seed": 1},
        "flattening_enabled": False,
        "flattening_max_depth": 1,
        "add_record_metadata": False,
        "validate_records": True,
    }
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not a setting" not in result.stderr
    assert len(recorder.requests) == 5


def test_sdk_settings_this_target_does_not_offer_are_accepted_with_a_warning(
    recorder, httpserver, tmp_path
):
    config = {
        "url": httpserver.url_for("/users"),
        "batch_config": {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///tmp"}},
        "load_method": "append-only",
        "batch_size_rows": 2,
    }
    result = run_target(config, USERS, tmp_path)
    for name in ("load_method", "batch_size_rows"):
        warned(result, f"'{name}' is an SDK setting this target does not use, so it is ignored")
    assert "'batch_config'" not in result.stderr, "BATCH messages use batch_config"
    assert len(recorder.requests) == 5, "batch_size_rows does not batch: request_mode does"


def test_every_name_in_the_final_schema_is_known():
    schema = final_schema()
    # The SDK's built-ins are part of the final schema, not a list kept here.
    assert {"stream_maps", "stream_map_config", "flattening_enabled", "validate_records"} <= set(
        TOP_LEVEL
    )
    config = {name: None for name in TOP_LEVEL} | {
        "streams": {"s": {name: None for name in PER_STREAM}}
    }
    assert unknown_settings(config, schema) == []


EDITS = ["drop", "double", "swap", "upper", "dash"]


def misspell(name: str, edit: str, i: int) -> str:
    """`name` with one typing mistake at position `i`."""
    i %= len(name)
    if edit == "drop":
        return name[:i] + name[i + 1 :]
    if edit == "double":
        return name[:i] + name[i] + name[i:]
    if edit == "swap":
        i = min(i, len(name) - 2)
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name.upper() if edit == "upper" else name.replace("_", "-")


def misspelt(names: list[str]) -> st.SearchStrategy[str]:
    """A one-edit misspelling of one of `names` that is itself no setting."""
    return st.builds(
        misspell, st.sampled_from(names), st.sampled_from(EDITS), st.integers(0, 40)
    ).filter(lambda wrong: wrong not in TOP_LEVEL)


def suggestion(problem: str) -> str:
    assert "did you mean '" in problem, problem
    return problem.split("did you mean '")[1].removesuffix("'?")


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(misspelt(TOP_LEVEL))
def test_a_misspelt_top_level_name_is_named_with_a_setting_suggested(wrong):
    (problem,) = unknown_settings({wrong: 1}, final_schema())
    assert problem.startswith(f"'{wrong}' is not a setting; did you mean '")
    assert suggestion(problem) in TOP_LEVEL


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(misspelt(PER_STREAM))
def test_a_misspelt_stream_setting_is_named_with_a_stream_setting_suggested(wrong):
    (problem,) = unknown_settings({"streams": {"users": {wrong: 1}}}, final_schema())
    assert problem.startswith(f"'streams.users.{wrong}' is not a setting; did you mean '")
    assert suggestion(problem) in PER_STREAM


def test_settings_from_the_environment_still_work(recorder, httpserver, tmp_path):
    env = clean_env(
        TARGET_RESTAPI_URL=httpserver.url_for("/users"),
        TARGET_RESTAPI_REQUEST_MODE="batch",
        TARGET_RESTAPI_NOT_A_SETTING="ignored: only known names are read from the environment",
    )
    proc = subprocess.run(
        [*TARGET, "--config", "ENV"],
        input=USERS.read_bytes(),
        capture_output=True,
        env=env,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(recorder.requests) == 1


def test_a_streams_entry_for_a_stream_that_never_arrives_is_warned_at_the_end(
    recorder, httpserver, tmp_path
):
    config = {
        "url": httpserver.url_for("/users"),
        "streams": {"user": {"request_mode": "batch"}},
    }
    result = run_target(config, USERS, tmp_path)
    warning = warned(result, "'streams.user' was not used", "did you mean 'users'?")
    assert result.stderr.rstrip().endswith(warning), "said at the end of the run"
    assert len(recorder.requests) == 5, "the misspelt entry did not apply"


def test_a_streams_entry_that_is_used_is_not_warned(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/x"), "streams": {"users": {"request_mode": "batch"}}}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "was not used" not in result.stderr


# 2. The URL's form


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("127.0.0.1:{port}/users", "write it as 'https://127.0.0.1:{port}/users'"),
        ("localhost:{port}/users", "write it as 'https://localhost:{port}/users'"),
        ("ftp://127.0.0.1:{port}/users", "uses ftp://"),
        ("http:///users", "has no host"),
        ("https://", "has no host"),
        ("http://127.0.0.1:port/users", "is not a valid URL"),
        ("/users", "is a path without scheme and host; write it as 'https://<host>/users'"),
    ],
    ids=["ip-no-scheme", "host-no-scheme", "ftp", "no-host", "empty-host", "bad-port", "path"],
)
def test_a_url_that_is_not_http_with_a_host_is_refused_at_start(
    recorder, httpserver, tmp_path, url, fix
):
    port = httpserver.port
    config = {"url": url.format(port=port)}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    error = refused(result, "setting 'url'", fix.format(port=port))
    assert "connection adapters" not in error
    assert recorder.requests == []


def test_a_streams_url_is_checked_and_named(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/x"),
        "streams": {"users": {"url": f"ftp://127.0.0.1:{httpserver.port}/users"}},
    }
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    refused(result, "stream 'users'", "setting 'url'", "http:// or https://")


def test_placeholders_in_the_path_pass_the_check(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users/") + "#{id}?name=#{name}"}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.path for seen in recorder.requests] == [f"/users/{i}" for i in range(1, 6)]


path_text = st.text(st.sampled_from("abz09-._~/%"), max_size=12)


@given(
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["api.example.com", "127.0.0.1:8080", "[::1]:443", "h"]),
    st.lists(st.tuples(path_text, st.sampled_from(["#{id}", "#{a.b}", "#{ x }"])), max_size=3),
    st.sampled_from(["", "?q=#{q}", "?a=1&b=#{b}"]),
)
def test_http_urls_with_placeholders_in_path_or_query_pass(scheme, host, pieces, query):
    path = "".join(text + field for text, field in pieces)
    assert url_problem(f"{scheme}://{host}/{path}{query}") is None


@given(
    st.sampled_from(["ftp", "file", "ws", "sftp", "mailto+x"]),
    st.sampled_from(["api.example.com", "127.0.0.1:8080"]),
    path_text,
)
def test_other_schemes_are_refused_naming_http(scheme, host, path):
    problem = url_problem(f"{scheme}://{host}/{path}")
    assert problem is not None
    assert "http:// or https://" in problem


@pytest.mark.parametrize(
    "url", ["https://#{host}/x", "#{base_url}/x", "http://api.#{region}.example.com/", "#{url}"]
)
def test_placeholders_in_scheme_or_host_are_left_to_rendering(url):
    """The seam: a field that gives the scheme or host is judged per record, not here."""
    assert url_problem(url) is None


# 3. GET carries no body


@pytest.mark.parametrize("mode", ["batch", "one"])
def test_get_with_batch_or_one_mode_is_refused_at_start(recorder, httpserver, tmp_path, mode):
    config = {"url": httpserver.url_for("/users/#{id}"), "method": "GET", "request_mode": mode}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    refused(result, f"method GET cannot be used with request_mode '{mode}'", "no body", "POST")
    assert recorder.requests == []


def test_get_with_batches_in_one_stream_is_refused_naming_it(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/users/#{id}"),
        "method": "GET",
        "streams": {"users": {"request_mode": "batch"}},
    }
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    refused(result, "stream 'users'", "method GET cannot be used with request_mode 'batch'")


def test_get_whose_url_and_headers_use_no_field_is_warned_once(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users"), "method": "GET", "headers": {"X-A": "b"}}
    result = run_target(config, USERS, tmp_path)
    warned(result, "method GET sends no body", "neither 'url' nor 'headers' uses a record field")
    assert len(recorder.requests) == 5


@pytest.mark.parametrize(
    "settings",
    [{"url": "/users/#{id}"}, {"url": "/users", "headers": {"X-User": "#{name}"}}],
    ids=["url", "header"],
)
def test_get_that_uses_a_field_is_not_warned(recorder, httpserver, tmp_path, settings):
    config = {**settings, "url": httpserver.url_for(settings["url"]), "method": "GET"}
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "method GET sends no body" not in result.stderr


# 4. A response path whose file system driver is not installed


@pytest.mark.parametrize(
    ("folder", "package", "extra"),
    [
        ("hdfs://namenode:8020/responses", "pyarrow", "hdfs"),
        ("gs://bucket/responses", "gcsfs", "gcs"),
        ("s3://bucket/responses", "s3fs", "s3"),
        ("abfs://container/responses", "adlfs", "azure"),
        ("az://container/responses", "adlfs", "azure"),
    ],
)
def test_a_missing_file_system_driver_is_one_line_with_the_install(
    recorder, httpserver, tmp_path, folder, package, extra
):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    config = {
        "url": httpserver.url_for("/users"),
        "streams": {"users": {"save_responses": True, "response_file_path": folder}},
    }
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    refused(result, "response_file_path", f"pip install 'target-restapi[{extra}]'")
    assert recorder.requests == []


# 5. The settings schema's own errors


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batch_size": 0}, "setting 'batch_size' is 0; use a whole number of at least 1"),
        ({"request_mode": "bulk"},
         "setting 'request_mode' is 'bulk'; use one of 'single', 'batch', 'one'"),
        ({"timeout_seconds": "x"}, "setting 'timeout_seconds' is 'x'; use a number of at least"),
        ({"request_sleep_interval_ms": 70000},
         "setting 'request_sleep_interval_ms' is 70000; use a whole number from 0 to 60000"),
        ({"max_requests_per_second": 0},
         "setting 'max_requests_per_second' is 0; use a number above 0"),
        ({"streams": {"users": {"batch_size": 1.5}}},
         "setting 'streams.users.batch_size' is 1.5; use a whole number"),
        ({"field_mappings": [{"field_name": "a"}]},
         "setting 'field_mappings[0]' lacks 'column_name', which is required"),
    ],
    ids=["minimum", "enum", "type", "range", "exclusive", "stream", "required"],
)  # fmt: skip
def test_a_schema_error_is_one_line_with_the_fix(recorder, httpserver, tmp_path, settings, message):
    config = {"url": httpserver.url_for("/users"), **settings}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    refused(result, message)
    assert "Config validation failed" not in result.stderr


def test_several_schema_errors_share_one_numbered_line(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/u"), "batch_size": 0, "request_mode": "bulk"}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    refused(result, "2 problems with the settings: (1) ", "(2) ", "batch_size", "request_mode")


@pytest.mark.parametrize(
    ("settings", "secret"),
    [
        ({"auth_type": "basic", "username": "u", "password": 918273645}, "918273645"),
        ({"bearer_token": {"token": "tok-7f3a9c"}}, "tok-7f3a9c"),
        ({"api_key_value": ["key-5e8d1b"]}, "key-5e8d1b"),
        ({"headers": {"Authorization": 564738291}}, "564738291"),
        ({"headers": {"X-Custom": ["hdr-2b7c"]}}, "hdr-2b7c"),
    ],
    ids=["password", "bearer_token", "api_key_value", "authorization-header", "any-header"],
)
def test_a_schema_error_never_quotes_a_secret(recorder, httpserver, tmp_path, settings, secret):
    config = {"url": httpserver.url_for("/users"), **settings}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    error = refused(result, "use text")
    assert secret not in result.stderr, error


# 6. Settings that would do nothing


def test_a_response_path_without_save_responses_is_warned(recorder, httpserver, tmp_path):
    folder = tmp_path / "responses"
    config = {"url": httpserver.url_for("/users"), "response_file_path": str(folder)}
    result = run_target(config, USERS, tmp_path)
    warned(result, "'response_file_path' has no effect until 'save_responses' is true")
    assert not folder.exists()


def test_a_response_path_used_by_a_stream_is_not_warned(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/users"),
        "response_file_path": str(tmp_path / "responses"),
        "streams": {"users": {"save_responses": True}},
    }
    result = run_target(config, USERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "has no effect" not in result.stderr
