"""Project habits: the type check, the license, pre-commit, development-only dependencies.

Read from the project's own files (pyproject.toml, Makefile, LICENSE, Dockerfile,
.pre-commit-config.yaml) and from the installed package's metadata, so a change that
drops one of them shows here, not months later.
"""

from __future__ import annotations

import ast
import importlib.metadata
import io
import re
import shlex
import tokenize
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "target_restapi"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEV_ONLY = {
    *("pytest", "pytest-httpserver", "pytest-xdist", "hypothesis", "trustme", "pyyaml"),
    *("ruff", "mypy"),
}


def _recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"{target}:")))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def _name(requirement: str) -> str:
    return re.split(r"[<>=~!;\[ ]", requirement, maxsplit=1)[0].lower()


def _comments(path: Path) -> list[tuple[int, str]]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return [(t.start[0], t.string) for t in tokens if t.type == tokenize.COMMENT]


# The type check


def test_make_lint_runs_mypy_over_the_package_with_no_unused_ignores():
    assert any(line.endswith("/mypy") or "/mypy " in line for line in _recipe("lint"))
    mypy = PYPROJECT["tool"]["mypy"]
    assert mypy["files"] == ["target_restapi"]
    assert mypy["warn_unused_ignores"] is True
    assert mypy["disallow_untyped_defs"] is True
    assert mypy["check_untyped_defs"] is True
    assert "ignore_missing_imports" not in mypy, "only per module, in [[tool.mypy.overrides]]"


def test_every_type_ignore_names_its_code_and_says_why():
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for number, comment in _comments(path):
            if "type: ignore" not in comment:
                continue
            where = f"{path.relative_to(ROOT)}:{number}"
            assert re.search(r"type: ignore\[[a-z-]+(, [a-z-]+)*\]", comment), where
            reason = comment.partition("]")[2].strip(" #")
            above = lines[number - 2].strip() if number > 1 else ""
            assert reason or above.startswith("#"), f"{where}: say why the ignore is needed"


# The license


def test_the_license_is_apache_2_with_its_copyright_line():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text
    assert re.search(r"^   Copyright \d{4} target-restapi authors$", text, re.MULTILINE)
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_the_image_build_has_the_license_file():
    copies = [
        shlex.split(line)[1:-1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    ]
    assert any("LICENSE" in sources for sources in copies)
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "LICENSE" not in ignored


# pre-commit


def test_pre_commit_runs_ruff_at_the_pinned_version_and_the_projects_mypy():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    repos = {repo["repo"]: repo for repo in config["repos"]}
    ruff = repos["https://github.com/astral-sh/ruff-pre-commit"]
    pinned = [r for r in PYPROJECT["dependency-groups"]["lint"] if _name(r) == "ruff"]
    assert pinned == [f"ruff=={ruff['rev'].removeprefix('v')}"]
    assert {hook["id"] for hook in ruff["hooks"]} == {"ruff-check", "ruff-format"}
    (mypy,) = repos["local"]["hooks"]
    assert mypy["language"] == "system"
    assert mypy["entry"] == ".venv/bin/mypy"
    assert mypy["pass_filenames"] is False  # the files come from [tool.mypy]


# Development-only dependencies


def test_development_dependencies_are_groups_not_published_extras():
    project = PYPROJECT["project"]
    published = {_name(r) for r in project["dependencies"]}
    published |= {_name(r) for rs in project["optional-dependencies"].values() for r in rs}
    assert not published & (DEV_ONLY | {"orjson"})
    assert set(project["optional-dependencies"]) == {"s3", "gcs", "azure", "hdfs"}
    groups = PYPROJECT["dependency-groups"]
    grouped = {_name(r) for name in ("test", "lint") for r in groups[name]}
    assert grouped >= DEV_ONLY
    assert {"include-group": "test"} in groups["dev"]
    assert {"include-group": "lint"} in groups["dev"]


def test_the_installed_package_requires_no_development_tool():
    requires = importlib.metadata.requires("target-restapi") or []
    assert requires, "target-restapi is not installed (make venv)"
    assert not {_name(r) for r in requires} & (DEV_ONLY | {"orjson"})


def test_make_installs_the_groups_and_the_image_does_not():
    assert any("--group dev" in line for line in _recipe("$(STAMP)"))
    assert any("'pip>=25.1'" in line for line in _recipe("$(STAMP)")), "--group needs pip 25.1"
    assert any("--group bench" in line for line in _recipe("bench"))
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--group" not in dockerfile
    assert not re.search(r"\b(pytest|ruff|mypy|hypothesis)\b", dockerfile)


# Leftovers


@pytest.mark.parametrize("folder", ["target_restapi", "tests"])
def test_no_comment_or_docstring_points_at_an_issue_number(folder):
    pattern = re.compile(r"\bissue #?\d+", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "say what the code does, not which issue asked for it"


# The setting, the method that parses it, and the template classes (JsonPayload, ...).
TEMPLATE_NAMES = re.compile(r"(custom|delete)_payload|payload_template|[A-Z]\w+Payload")


def test_shaping_says_payload_only_for_the_users_template():
    """`payload` is the user's template (custom_payload); what goes on the wire is a body."""
    found = []
    for path in sorted((PACKAGE / "shaping").glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {
            getattr(node, attribute)
            for node in ast.walk(tree)
            for attribute in ("name", "id", "attr", "arg")
            if isinstance(getattr(node, attribute, None), str)
        }
        found += [f"{path.name}: {n}" for n in names if "payload" in n.lower()]
        texts = [ast.get_docstring(n) or "" for n in ast.walk(tree) if _has_docstring(n)]
        texts += [comment for _, comment in _comments(path)]
        for text in texts:
            for match in re.finditer(r"(\w+[ _-])?payload([ _-]\w+)?", text, re.IGNORECASE):
                allowed = r"(custom|delete)[ _]payload.*|.*payload[ _]templates?"
                if not re.fullmatch(allowed, match[0], re.IGNORECASE):
                    found.append(f"{path.name}: {match[0]!r}")
    assert not [f for f in found if not TEMPLATE_NAMES.fullmatch(f.rpartition(": ")[2])]


def _has_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
