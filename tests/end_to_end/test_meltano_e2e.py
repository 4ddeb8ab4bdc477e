"""End to end through a real Meltano project: `meltano run tap-jsonl target-restapi`.

Meltano is installed once into `.cache/meltano-venv` (ignored by git) and reused by later
runs; each test run then makes a Meltano project in tmp_path whose loader is the one in
this repository's meltano.yml (pip_url pointed at this checkout), and whose extractor,
tap-jsonl, comes from PyPI. Every plugin is declared with namespace, pip_url and
executable and no variant, so Meltano never asks Meltano Hub.

Set SKIP_MELTANO_E2E=1 to skip it. If Meltano cannot be installed the test is skipped
with pip's reason, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.run import clean_env

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
MELTANO_VENV = CACHE / "meltano-venv"
MELTANO_VERSION = "4.4.1"
TAP_PIP_URL = "tap-jsonl==0.3.1"
INSTALL_TIMEOUT = 900  # guards against a hung download; not an assertion about speed
RUN_TIMEOUT = 300
RECORDS = 25
USERNAME, PASSWORD = "meltano-user", "s3cret-Meltano-pw"

pytestmark = [
    pytest.mark.meltano,
    pytest.mark.slow,
    # One worker (pytest-xdist) runs these, so two never install into .cache/ at once.
    pytest.mark.xdist_group("meltano"),
    pytest.mark.skipif(bool(os.environ.get("SKIP_MELTANO_E2E")), reason="SKIP_MELTANO_E2E is set"),
]


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def _cannot(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def meltano() -> Path:
    """The meltano executable from the cached venv, installed on first use."""
    exe = _bin(MELTANO_VENV, "meltano")
    stamp = MELTANO_VENV / f".installed-meltano-{MELTANO_VERSION}"
    if stamp.is_file() and exe.is_file():
        return exe
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("# cached tools for the tests\n*\n")
    shutil.rmtree(MELTANO_VENV, ignore_errors=True)
    started = time.monotonic()
    steps = [
        [sys.executable, "-m", "venv", str(MELTANO_VENV)],
        [
            str(_bin(MELTANO_VENV, "python")),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"meltano=={MELTANO_VERSION}",
        ],
    ]
    for step in steps:
        try:
            proc = subprocess.run(
                step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            _cannot(f"installing meltano: `{' '.join(step)}` took over {INSTALL_TIMEOUT} s")
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if "WARNING" not in line]
            _cannot(
                f"meltano {MELTANO_VERSION} could not be installed into {MELTANO_VENV}: "
                f"`{' '.join(step)}` exited {proc.returncode}: " + " | ".join(errors[-5:])
            )
    stamp.write_text(f"installed in {time.monotonic() - started:.1f} s\n")
    return exe


def _loader_definition() -> dict:
    """This repository's target-restapi loader, installed from this checkout."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-restapi"]
    assert loader["pip_url"] == "-e .", "meltano.yml should install the target from its folder"
    assert "variant" not in loader
    return {**loader, "pip_url": f"-e {ROOT}"}


def _write_project(project: Path, data: Path, url: str) -> None:
    loader = _loader_definition()
    loader["config"] = {
        "url": url,
        "method": "PUT",
        "auth_type": "basic",
        "username": USERNAME,
        # password: from TARGET_RESTAPI_PASSWORD, as a sensitive setting should be
    }
    definition = {
        "project_id": "target-restapi-e2e",
        "send_anonymous_usage_stats": False,
        "default_environment": "dev",
        "environments": [{"name": "dev"}],
        "plugins": {
            "extractors": [
                {
                    "name": "tap-jsonl",
                    "namespace": "tap_jsonl",
                    "pip_url": TAP_PIP_URL,
                    "executable": "tap-jsonl",
                    "capabilities": ["catalog", "discover", "state", "about", "stream-maps"],
                    "settings": [
                        {"name": "path"},
                        {"name": "stream_name"},
                        {"name": "primary_keys", "kind": "array"},
                        {"name": "emit_state_every", "kind": "integer"},
                    ],
                    "config": {
                        "path": str(data / "*.jsonl"),
                        "stream_name": "people",
                        "primary_keys": ["id"],
                        "emit_state_every": 10,
                    },
                }
            ],
            "loaders": [loader],
        },
    }
    project.mkdir()
    (project / "meltano.yml").write_text(yaml.safe_dump(definition, sort_keys=False))


def _meltano(meltano: Path, project: Path, *args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(meltano), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT if args[0] == "install" else RUN_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, (
        f"`meltano {' '.join(args)}` exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-8000:]}"
    )
    return proc.stdout


def test_meltano_run_delivers_every_record_and_stores_state(
    meltano, recorder, httpserver, tmp_path
):
    data = tmp_path / "data"
    data.mkdir()
    people = [
        {"id": i, "name": f"person {i}", "tags": ["a", "b"][: i % 3]} for i in range(1, RECORDS + 1)
    ]
    (data / "people.jsonl").write_text("".join(json.dumps(p) + "\n" for p in people))
    project = tmp_path / "project"
    _write_project(project, data, httpserver.url_for("/people/") + "#{id}")
    env = clean_env(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_DISABLE_TRACKING="true",
        TARGET_RESTAPI_PASSWORD=PASSWORD,
    )
    env.pop("VIRTUAL_ENV", None)

    _meltano(meltano, project, "install", env=env)
    _meltano(meltano, project, "run", "tap-jsonl", "target-restapi", env=env)

    # Every record arrived, once, as a PUT to its own URL, with the password from the env.
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert len(recorder.requests) == RECORDS
    assert sorted(seen.path for seen in recorder.requests) == sorted(
        f"/people/{i}" for i in range(1, RECORDS + 1)
    )
    for seen in recorder.requests:
        assert seen.method == "PUT"
        assert seen.header("Authorization") == f"Basic {token}"
        body = seen.json()
        assert body["name"] == f"person {body['id']}"
        assert f"/people/{body['id']}" == seen.path

    # Meltano stored the tap's bookmark that the target emitted after delivery.
    ids = _meltano(meltano, project, "state", "list", env=env).split()
    assert "dev:tap-jsonl-to-target-restapi" in ids, ids
    state = json.loads(
        _meltano(meltano, project, "state", "get", "dev:tap-jsonl-to-target-restapi", env=env)
    )
    state = state.get("singer_state", state)
    bookmark = state["bookmarks"]["people"]
    assert bookmark["replication_key"] == "_sdc_last_modified"
    assert bookmark["replication_key_value"]

    # The password is a sensitive setting: Meltano shows it redacted, never in clear.
    listing = _meltano(meltano, project, "config", "list", "target-restapi", env=env)
    assert PASSWORD not in listing
    assert "password [env: TARGET_RESTAPI_PASSWORD] current value: (redacted)" in listing


def test_hub_definition_adds_with_meltano_and_keeps_secrets_out_of_meltano_yml(meltano, tmp_path):
    """`meltano add --from-ref plugin/target-restapi.yml`: the Hub file as Meltano reads it."""
    project = tmp_path / "hub-project"
    project.mkdir()
    (project / "meltano.yml").write_text(
        yaml.safe_dump(
            {
                "project_id": "target-restapi-hub",
                "send_anonymous_usage_stats": False,
                "default_environment": "dev",
                "environments": [{"name": "dev"}],
            }
        )
    )
    env = clean_env(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false")
    env.pop("VIRTUAL_ENV", None)
    ref = str(ROOT / "plugin" / "target-restapi.yml")
    _meltano(meltano, project, "add", "--plugin-type", "loader", "target-restapi",
             "--from-ref", ref, "--no-install", env=env)  # fmt: skip
    key = "openssh-private-key-not-a-real-key"
    for name, value in [
        ("url", "https://api.example.com/users/#{id}"),
        ("ssh_tunnel.host", "bastion.example.com"),
        ("ssh_tunnel.private_key", key),
        ("streams", json.dumps({"orders": {"password": "per-stream-pw"}})),
    ]:
        _meltano(meltano, project, "config", "set", "target-restapi", name, value, env=env)

    # Secrets went to .env, the rest to meltano.yml.
    dotenv, project_file = (project / ".env").read_text(), (project / "meltano.yml").read_text()
    assert (
        "TARGET_RESTAPI_SSH_TUNNEL_PRIVATE_KEY=" in dotenv and "not-a-real-key" not in project_file
    )
    assert "TARGET_RESTAPI_STREAMS=" in dotenv and "per-stream-pw" not in project_file
    assert "bastion.example.com" in project_file and "api.example.com" in project_file

    # The config Meltano hands to the target: nested settings merged, secrets redacted on
    # screen, and no `stream_maps.__else__: null` (which would drop every stream).
    printed = json.loads(_meltano(meltano, project, "config", "print", "target-restapi", env=env))
    assert printed["url"] == "https://api.example.com/users/#{id}"
    assert printed["ssh_tunnel"]["host"] == "bastion.example.com"
    assert printed["ssh_tunnel"]["private_key"] != key and "not-a-real-key" not in str(printed)
    assert "per-stream-pw" not in str(printed)
    assert "__else__" not in (printed.get("stream_maps") or {})
