"""The marks that make the docs' examples runnable, read from Markdown, and how shown text
is compared with a run's output (`…` stands for any text). Pure: no I/O but reading pages.

See docs/development.md, "Documented examples are tested", for the marks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"<!--\s*(example|also|run|shows|covered):\s*(.*?)\s*-->", re.DOTALL)
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^ *```[ \t]*$", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
COMMAND = re.compile(r"target-restapi --config (\S+) < (\S+)`")
RUN_SPEC = re.compile(r"^(?P<config>.*?)(?:\s*<\s*(?P<input>\S+))?(?:\s+exit (?P<exit>\d+))?$")
HEREDOC = re.compile(r"cat > (\S+) <<'EOF'\n(.*?)\nEOF\n", re.DOTALL)
DOC_PORT = re.compile(r"(?:(?<=127\.0\.0\.1:)|(?<=localhost:)|(?<=port=))(8000|8001|8443|8444)\b")
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \| \w+ +\| \S+ +\| (.*)$", re.MULTILINE)
REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) /", re.MULTILINE)
VARYING = [  # parts that differ from run to run, compared by their shape only
    (re.compile(r'"time":"\d{4}-\d\d-\d\dT[\d:.]+\+00:00"'), '"time":"<time>"'),
    (re.compile(r'"elapsed_ms":[\d.]+'), '"elapsed_ms":<ms>'),
    (re.compile(r"(?<=Idempotency-Key: )[0-9a-f]{64}"), "<sha256>"),  # hashes the URL's port
]


@dataclass
class Expect:
    kind: str
    text: str
    where: str


@dataclass
class Run:
    where: str
    config: dict
    input: str
    exit: int
    expects: list[Expect] = field(default_factory=list)


@dataclass
class Parsed:
    runs: list[Run] = field(default_factory=list)
    covered: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse(parsed: Parsed, root: Path, page: str) -> None:
    """Collect the runs, expectations, covered blocks and input files of one page."""
    text = (root / page).read_text()
    fences = {m.start(): m for m in FENCE.finditer(text)}
    used: set[int] = set()
    example: Run | None = None
    for marker in MARKER.finditer(text):
        kind, arg = marker.groups()
        where = f"{page}:{text.count(chr(10), 0, marker.start()) + 1}"
        after = marker.end() + len(text[marker.end() :]) - len(text[marker.end() :].lstrip())
        fence = fences.get(text.rfind("\n", 0, after) + 1) if after < len(text) else None
        if fence and text[marker.end() : fence.start()].strip():
            fence = None
        spec = RUN_SPEC.match(arg)
        if kind == "example":
            name, _, exit_code = arg.partition(" exit ")
            config = next(
                (f for s, f in fences.items() if s > marker.end() and f[2] == "json"), None
            )
            command = COMMAND.search(text, marker.end())
            if not config or not command or command.group(1) != name:
                parsed.problems.append(f"{where}: no `target-restapi --config {name} < FILE`")
                continue
            used.add(config.start())
            example = Run(where, json.loads(config[3]), command[2], int(exit_code or 0))
            parsed.runs.append(example)
        elif kind == "also" and example:
            config = {**example.config, **json.loads(spec["config"])}
            parsed.runs.append(Run(where, config, example.input, int(spec["exit"] or 0)))
        elif kind == "run" and spec["input"]:
            config = json.loads(spec["config"])
            parsed.runs.append(Run(where, config, spec["input"], int(spec["exit"] or 0)))
        elif kind == "shows" and parsed.runs:
            if fence:
                used.add(fence.start())
                shown = "\n".join(line[len(fence[1]) :] for line in fence[3].splitlines())
            elif inline := INLINE.search(text, marker.end()):
                shown = inline[2].strip()
            else:
                parsed.problems.append(f"{where}: `shows: {arg}` with no code after it")
                continue
            parsed.runs[-1].expects.append(Expect(arg, shown, where))
        elif kind == "covered":
            used.add(fence.start() if fence else marker.start())
            parsed.covered.append(tuple(arg.split("::")))
        else:
            parsed.problems.append(f"{where}: `{kind}: {arg}` has nothing to apply to")
    for start, fence in fences.items():
        if fence[2] == "sh":
            parsed.files.update(HEREDOC.findall(fence[3] + "\n"))
        elif fence[2] in ("text", "json") and start not in used:
            line = text.count("\n", 0, start) + 1
            parsed.problems.append(f"{page}:{line}: a {fence[2]} block neither run nor covered")


def normalize(text: str) -> str:
    """Text without what differs between runs, and without a trailing newline."""
    for boundary in set(re.findall(r"boundary=([0-9a-f]+)", text)):
        text = text.replace(boundary, "<boundary>")
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def matches(shown: str, actual: str) -> bool:
    """Whether `actual` is the shown text: `…` stands for any text, a line `…` for any lines."""
    pattern, newline = "", False
    for number, line in enumerate(normalize(shown).split("\n")):
        if line == "…":  # any number of lines, none included
            pattern += r"(?:\n.*?)?" if number else r"(?:.*?\n|.*?$)?"
            continue
        pattern += r"\n" if newline else ""
        pattern += ".*?".join(re.escape(part) for part in line.split("…"))
        newline = True
    return re.fullmatch(pattern, normalize(actual), re.DOTALL) is not None
