"""Start-up imports only what a run needs (figures in docs/performance.md).

Each case runs the target in a fresh interpreter and reads back which modules it loaded:
no timing, so load on the machine cannot make it flaky. The SDK itself imports fsspec,
jsonschema, requests and the REST/GraphQL stream modules (singer_sdk/__init__.py), so
those cannot be left out and are not checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Imported only by the runs whose settings need them.
LAZY = (
    "jmespath",  # answer settings (success_condition, item_results, ...)
    "difflib",  # the "did you mean" of a misspelt setting
    "paramiko",  # ssh_tunnel
    "sshtunnel",
    "authlib",  # auth_type oauth2
    "cryptography",  # client certificates
    "redis",  # rate_limit_redis_url
)

# Runs the CLI in this interpreter, then prints what it loaded and how many objects the
# SDK import left frozen for the collector (sdk_seam.py).
SCRIPT = """
import contextlib, gc, io, json, sys
from target_restapi.target import TargetRestApi
args, lazy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["target-restapi", *args]
out, code = io.StringIO(), None
with contextlib.redirect_stdout(out):
    try:
        TargetRestApi.cli()
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "stdout": out.getvalue(), "frozen": gc.get_freeze_count(),
                  "loaded": sorted(m for m in lazy if m in sys.modules)}))
"""


def run_cli(args: list[str], stdin: bytes = b"") -> dict:
    """The CLI's exit code and stdout, and which of LAZY it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(args), json.dumps(LAZY)],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.decode().splitlines()[-1])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"url": "http://127.0.0.1:9/unused"}))
    return path


def test_about_loads_none_of_the_optional_libraries() -> None:
    result = run_cli(["--about"])
    assert result["code"] in (0, None)
    assert "target-restapi" in result["stdout"]
    assert result["loaded"] == []


def test_about_as_json_is_unchanged_and_loads_none_of_them() -> None:
    result = run_cli(["--about", "--format=json"])
    about = json.loads(result["stdout"])
    assert about["name"] == "target-restapi"
    assert "url" in about["settings"]["properties"]
    assert result["loaded"] == []


def test_empty_input_loads_none_of_them(config: Path) -> None:
    result = run_cli(["--config", str(config)])
    assert result["code"] in (0, None)
    assert result["stdout"] == ""
    assert result["loaded"] == []


def test_the_check_sees_a_library_a_setting_needs(tmp_path: Path) -> None:
    """The other cases are not vacuous: a success_condition does load jmespath."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"url": "http://127.0.0.1:9/unused", "success_condition": "ok"}))
    assert run_cli(["--config", str(path)])["loaded"] == ["jmespath"]


def test_what_the_sdk_import_built_is_frozen_for_the_collector() -> None:
    assert run_cli(["--about"])["frozen"] > 0
