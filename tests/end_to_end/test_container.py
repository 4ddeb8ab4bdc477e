"""The container: its entrypoint script run outside Docker, and the Dockerfile's key facts.

No Docker engine runs here, so the entrypoint (scripts/entrypoint.sh, the image's
ENTRYPOINT) is run with /bin/sh and the test venv on PATH, sample data piped in, against
a loopback receiver: as `docker run -i` would run it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.run import RUN_TIMEOUT, clean_env, parse_states

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "scripts" / "entrypoint.sh"
DOCKERFILE = ROOT / "Dockerfile"
USERS = ROOT / "sample_data" / "users.singer"


def _messages(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _records(path: Path) -> list[dict]:
    return [m["record"] for m in _messages(path) if m["type"] == "RECORD"]


def _states(path: Path) -> list[dict]:
    return [m["value"] for m in _messages(path) if m["type"] == "STATE"]


def _env(**extra: str) -> dict[str, str]:
    """A container-like environment: the venv's executables on PATH, no stray settings."""
    env = clean_env(**extra)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run(*args: str, env: dict[str, str], input: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        input=input,
        capture_output=True,
        env=env,
        timeout=RUN_TIMEOUT,
        check=False,
        cwd=ROOT,
    )


def _assert_delivered(proc: subprocess.CompletedProcess, recorder, path: Path = USERS) -> None:
    assert proc.returncode == 0, proc.stderr.decode()
    assert [seen.json()["id"] for seen in recorder.requests] == [r["id"] for r in _records(path)]
    assert parse_states(proc.stdout.decode()) == _states(path)


@pytest.fixture
def config_file(tmp_path, httpserver):
    """Writes a settings file (as mounted into the container) and returns its path."""

    def write(**settings) -> Path:
        path = tmp_path / "config.json"
        path.write_text(json.dumps({"url": httpserver.url_for("/users/#{id}"), **settings}))
        return path

    return write


def test_entrypoint_reads_the_mounted_config_file(recorder, config_file):
    path = config_file(method="PUT")
    proc = _run(env=_env(TARGET_RESTAPI_CONFIG_FILE=str(path)), input=USERS.read_bytes())
    _assert_delivered(proc, recorder)
    assert {seen.method for seen in recorder.requests} == {"PUT"}
    assert [seen.path for seen in recorder.requests] == ["/users/1", "/users/2", "/users/3"]


def test_entrypoint_takes_settings_from_the_environment_alone(recorder, httpserver):
    env = _env(
        TARGET_RESTAPI_URL=httpserver.url_for("/import"),
        TARGET_RESTAPI_REQUEST_MODE="batch",
        TARGET_RESTAPI_BATCH_SIZE="2",
        TARGET_RESTAPI_HEADERS=json.dumps({"X-Job": "nightly"}),
    )
    proc = _run(env=env, input=USERS.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    assert all(seen.path == "/import" for seen in recorder.requests)
    assert all(seen.header("X-Job") == "nightly" for seen in recorder.requests)
    sent = [r["id"] for seen in recorder.requests for r in seen.json()]
    assert sent == [r["id"] for r in _records(USERS)]
    assert parse_states(proc.stdout.decode()) == _states(USERS)


def test_environment_secrets_are_laid_over_the_config_file(recorder, config_file):
    """The file holds the settings, the environment the secret: env wins over the file."""
    path = config_file(auth_type="basic", username="loader", password="not-this-one")
    env = _env(TARGET_RESTAPI_CONFIG_FILE=str(path), TARGET_RESTAPI_PASSWORD="s3cret-from-env")
    proc = _run(env=env, input=USERS.read_bytes())
    _assert_delivered(proc, recorder)
    token = base64.b64encode(b"loader:s3cret-from-env").decode()
    assert {seen.header("Authorization") for seen in recorder.requests} == {f"Basic {token}"}
    assert b"s3cret-from-env" not in proc.stderr


def test_an_explicit_config_argument_replaces_the_defaults(recorder, config_file, tmp_path):
    path = config_file()
    elsewhere = tmp_path / "elsewhere.json"
    path.rename(elsewhere)
    env = _env(TARGET_RESTAPI_URL="http://127.0.0.1:9/never-used")  # no --config ENV now
    proc = _run("--config", str(elsewhere), env=env, input=USERS.read_bytes())
    _assert_delivered(proc, recorder)


def test_a_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.json"
    proc = _run(env=_env(TARGET_RESTAPI_CONFIG_FILE=str(missing)), input=USERS.read_bytes())
    assert proc.returncode == 2
    assert str(missing) in proc.stderr.decode()


def test_entrypoint_passes_about_and_version_through():
    about = _run("--about", "--format=json", env=_env())
    assert about.returncode == 0, about.stderr.decode()
    assert json.loads(about.stdout)["name"] == "target-restapi"
    version = _run("--version", env=_env())
    assert version.returncode == 0 and b"target-restapi" in version.stdout


def test_sigterm_reaches_the_target(recorder, config_file):
    """`docker stop` signals PID 1: the script execs, so the target itself gets SIGTERM."""
    path = config_file()
    lines = USERS.read_bytes().splitlines(keepends=True)
    proc = subprocess.Popen(
        ["/bin/sh", str(ENTRYPOINT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(TARGET_RESTAPI_CONFIG_FILE=str(path)),
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"".join(lines[:2]))  # SCHEMA and the first RECORD
        proc.stdin.flush()
        deadline = time.monotonic() + RUN_TIMEOUT
        while not recorder.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recorder.requests, "the first record was never sent"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "received SIGTERM" in stderr.decode(), stderr.decode()
    assert len(recorder.requests) == 1


def test_entrypoint_script_is_posix_sh_and_executable():
    assert os.access(ENTRYPOINT, os.X_OK), "scripts/entrypoint.sh must be executable"
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["/bin/sh", "-n", str(ENTRYPOINT)], check=True)
    assert re.search(r'^exec target-restapi "\$@"$', ENTRYPOINT.read_text(), re.MULTILINE)


# The Dockerfile, read as Docker reads it.


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    joined = re.sub(r"\\\n(?:\s*#.*\n)*", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions(DOCKERFILE.read_text())
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions[starts[-1] :]


def test_dockerfile_every_stage_is_python_slim():
    images = [
        rest.split()[0] for word, rest in _instructions(DOCKERFILE.read_text()) if word == "FROM"
    ]
    assert images and all(re.fullmatch(r"python:3\.\d+-slim(-\w+)?", image) for image in images)
    assert images[-1] == "python:3.11-slim"


def test_dockerfile_runs_as_a_non_root_user():
    users = [rest for word, rest in _final_stage() if word == "USER"]
    assert users, "the final stage sets no USER: the target would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # The user exists: created in the image before USER switches to it.
    created = " ".join(rest for word, rest in _final_stage() if word == "RUN")
    assert re.search(rf"useradd\b.*(--uid {user}\b|\b{user}$|\s{user}\s)", created)


def test_dockerfile_entrypoint_is_the_script_in_exec_form():
    final = _final_stage()
    entrypoints = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    command = json.loads(entrypoints[-1])  # exec form: the target is PID 1, gets signals
    copied = [shlex.split(rest) for word, rest in final if word == "COPY"]
    destinations = {args[-1] for args in copied if "scripts/entrypoint.sh" in args}
    assert command[0] in destinations, f"{command[0]} is not where entrypoint.sh is copied"
    assert not [rest for word, rest in final if word == "CMD"], "a CMD would add arguments"
    # The package is installed in the image.
    installs = [rest for word, rest in final if word == "RUN" and "pip install" in rest]
    assert installs and "target-restapi" in installs[0]
    # The build context has what the build copies.
    for word, rest in _instructions(DOCKERFILE.read_text()):
        if word == "COPY" and "--from" not in rest:
            for source in shlex.split(rest)[:-1]:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), source


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".git", ".env", ".cache", ".meltano", "**/__pycache__", "tests"):
        assert needed in patterns, f".dockerignore should exclude {needed}"
    for kept in ("pyproject.toml", "README.md", "target_restapi", "scripts"):
        assert kept not in patterns, f"the build needs {kept}"
