"""meltano.yml, plugin/target-restapi.yml and the README settings table match `--about`.

The expectations are worked out here from `--about --format=json`, independently of
scripts/sync_settings_docs.py, which writes the files; the last tests also run that
script's --check so that any hand edit of a generated part shows.

Fix a failure with `make readme-settings` (it regenerates all three).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.run import TARGET, clean_env

ROOT = Path(__file__).resolve().parents[2]
SYNC = ROOT / "scripts" / "sync_settings_docs.py"
FIX = "run `make readme-settings`"


def _about(fmt: str) -> str:
    return subprocess.run(
        [*TARGET, "--about", f"--format={fmt}"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=60,
    ).stdout


@pytest.fixture(scope="module")
def about() -> dict[str, Any]:
    return json.loads(_about("json"))


@pytest.fixture(scope="module")
def about_markdown() -> str:
    return _about("markdown")


def _is_secret(schema: Any) -> bool:
    return isinstance(schema, dict) and bool(schema.get("secret") or schema.get("writeOnly"))


def _secret_inside(schema: Any, *, skip_properties: bool) -> bool:
    """A secret anywhere in `schema`, not counting its own `properties` if told so."""
    if isinstance(schema, list):
        return any(_secret_inside(s, skip_properties=False) for s in schema)
    if not isinstance(schema, dict):
        return False
    if _is_secret(schema):
        return True
    parts = [schema.get(k) for k in ("additionalProperties", "items", "anyOf", "oneOf", "allOf")]
    parts += list((schema.get("patternProperties") or {}).values())
    if not skip_properties:
        parts += list((schema.get("properties") or {}).values())
    return any(_secret_inside(p, skip_properties=False) for p in parts if p is not None)


def expected_settings(about: dict[str, Any]) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Setting name -> (sensitive, schema), for every setting Meltano should declare.

    Nested properties are dotted settings (the SDK's `__x__` map keys excepted: Meltano
    would pass them as null). A setting is sensitive when it is a secret, or holds one
    that is not a dotted setting of its own (`streams.<name>.password`).
    """
    found: dict[str, tuple[bool, dict[str, Any]]] = {}

    def walk(properties: dict[str, Any], parent: str) -> None:
        for key, schema in properties.items():
            if parent and key.startswith("__"):
                continue
            name = f"{parent}.{key}" if parent else key
            nested = bool(schema.get("properties"))
            found[name] = (_secret_inside(schema, skip_properties=nested), schema)
            if nested:
                walk(schema["properties"], name)

    walk(about["settings"]["properties"], "")
    return found


def _meltano_loader() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    loaders = [p for p in project["plugins"]["loaders"] if p["name"] == "target-restapi"]
    assert len(loaders) == 1, "meltano.yml must define exactly one target-restapi loader"
    return loaders[0]


def _hub_definition() -> dict[str, Any]:
    path = ROOT / "plugin" / "target-restapi.yml"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing; {FIX}"
    return yaml.safe_load(path.read_text())


DEFINITIONS = {"meltano.yml": _meltano_loader, "plugin/target-restapi.yml": _hub_definition}


@pytest.fixture(params=sorted(DEFINITIONS))
def definition(request) -> tuple[str, dict[str, Any]]:
    return request.param, DEFINITIONS[request.param]()


def test_every_setting_is_declared_once_and_nothing_else(definition, about):
    where, plugin = definition
    names = [s["name"] for s in plugin["settings"]]
    expected = expected_settings(about)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    missing = [n for n in expected if n not in names]
    unknown = [n for n in names if n not in expected]
    assert not duplicates, f"{where}: settings declared twice: {duplicates}; {FIX}"
    assert not missing, f"{where}: settings missing (they are in --about): {missing}; {FIX}"
    assert not unknown, f"{where}: settings that --about does not have: {unknown}; {FIX}"


def test_sensitivity_matches_about(definition, about):
    where, plugin = definition
    declared = {s["name"]: s for s in plugin["settings"]}
    wrong = [
        f"{name} should{'' if sensitive else ' not'} be sensitive"
        for name, (sensitive, _) in expected_settings(about).items()
        if name in declared and bool(declared[name].get("sensitive")) is not sensitive
    ]
    assert not wrong, f"{where}: {'; '.join(wrong)}; {FIX}"
    # `kind: password` is Meltano's deprecated spelling of `sensitive: true`.
    assert not [s["name"] for s in plugin["settings"] if s.get("kind") == "password"]


def test_every_secret_in_about_is_covered_by_a_sensitive_setting(definition, about):
    """Walk every secret property, however deep: the setting that carries it is sensitive."""
    where, plugin = definition
    sensitive = {s["name"] for s in plugin["settings"] if s.get("sensitive")}
    uncovered = []

    def walk(schema: Any, setting: str, path: str) -> None:
        if isinstance(schema, list):
            for item in schema:
                walk(item, setting, path)
            return
        if not isinstance(schema, dict):
            return
        if _is_secret(schema) and setting not in sensitive:
            uncovered.append(path)
        for key, sub in (schema.get("properties") or {}).items():
            child = f"{setting}.{key}"
            walk(sub, child if child in declared else setting, f"{path}.{key}")
        for key in ("additionalProperties", "items", "anyOf", "oneOf", "allOf"):
            walk(schema.get(key), setting, f"{path}[{key}]")

    declared = {s["name"] for s in plugin["settings"]}
    for name, schema in about["settings"]["properties"].items():
        walk(schema, name, name)
    assert not uncovered, f"{where}: secrets not covered by a sensitive setting: {uncovered}"


def test_known_secrets_and_objects(definition):
    """Spot checks of the rule on today's settings."""
    where, plugin = definition
    settings = {s["name"]: s for s in plugin["settings"]}
    secrets = (
        "password",
        "client_cert",
        "ssh_tunnel.private_key",
        "ssh_tunnel.private_key_password",
    )
    for name in secrets:
        assert settings[name].get("sensitive") is True, f"{where}: {name}"
        assert settings[name]["kind"] == "string", f"{where}: {name}"
    assert settings["streams"].get("sensitive") is True, "streams can hold a per-stream password"
    # Meltano redacts a sensitive object to one string and then cannot nest its dotted
    # settings into it: an object with dotted settings is never itself sensitive.
    assert not settings["ssh_tunnel"].get("sensitive")
    assert not settings["url"].get("sensitive")
    for name in ("headers", "static_fields", "streams", "ssh_tunnel"):
        assert settings[name]["kind"] == "object", f"{where}: {name}"


def test_kinds_options_and_labels(definition, about):
    where, plugin = definition
    expected = expected_settings(about)
    for setting in plugin["settings"]:
        name, schema = setting["name"], expected[setting["name"]][1]
        assert setting.get("label"), f"{where}: {name} has no label"
        assert setting.get("description") == schema.get("description", ""), f"{where}: {name}"
        if "enum" in schema:
            assert setting["kind"] == "options", f"{where}: {name}"
            assert [o["value"] for o in setting["options"]] == schema["enum"], f"{where}: {name}"
        types = set(schema.get("type") or []) - {"null"}
        simple = {"boolean": "boolean", "integer": "integer", "number": "decimal"}
        if len(types) == 1 and "enum" not in schema and (kind := simple.get(types.pop())):
            assert setting["kind"] == kind, f"{where}: {name}"
        if schema.get("default") is not None:
            assert setting.get("value") == schema["default"], f"{where}: {name} default"


def test_plugin_facts(about):
    loader = _meltano_loader()
    assert loader["namespace"] == "target_restapi"
    assert loader["pip_url"] == "-e ."
    assert loader["executable"] == "target-restapi"
    assert "variant" not in loader, "a variant would make Meltano ask Meltano Hub"
    assert loader["capabilities"] == about["capabilities"]
    for capability in (
        "about",
        "stream-maps",
        "schema-flattening",
        "structured-logging",
        "validate-records",
    ):
        assert capability in loader["capabilities"]

    hub = _hub_definition()
    for key in ("name", "namespace", "variant", "label", "description", "pip_url", "executable"):
        assert hub.get(key), f"plugin/target-restapi.yml lacks {key}"
    assert hub["name"] == "target-restapi" and hub["namespace"] == "target_restapi"
    assert hub["executable"] == "target-restapi"
    assert hub["capabilities"] == about["capabilities"]
    assert hub["description"] == about["description"]
    assert hub["maintenance_status"] and "meltano_sdk" in hub["keywords"]
    assert hub["settings_group_validation"] == [about["settings"].get("required", [])]


def _table(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("## Settings") + 1 if "## Settings" in lines else 0
    rows = []
    for line in lines[start:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows


def test_settings_match_the_rows_of_the_about_table(about_markdown):
    rows = [r.split("|")[1].strip() for r in _table(about_markdown)[2:]]
    names = [n for n in rows if not re.search(r"\.__\w+__$", n)]
    assert [s["name"] for s in _meltano_loader()["settings"]] == names


def test_readme_settings_table_is_the_about_table(about_markdown):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings:start -->(.*?)<!-- settings:end -->", readme, re.DOTALL)
    assert block, "README.md lacks the <!-- settings:start --> ... <!-- settings:end --> markers"
    assert _table(block.group(1)) == _table(about_markdown), (
        f"README.md's settings table is not `target-restapi --about --format=markdown`; {FIX}"
    )


@pytest.mark.parametrize("only", ["readme", "meltano", "plugin"])
def test_generated_files_are_up_to_date(only):
    proc = subprocess.run(
        [sys.executable, str(SYNC), "--check", "--only", only],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
