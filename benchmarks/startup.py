"""Start-up: how long `--about` and an empty input take, beside Python's and the SDK's own.

Each command runs `runs` times; the median wall time and the median CPU time (user + system,
from wait4: steadier on a loaded machine) are printed. Compiled bytecode is written first
(as an installed package has it), so the figures do not include compiling our modules.
Run alone: `.venv/bin/python benchmarks/startup.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
# Like an installed package: .pyc files are written once, then read.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command`, with an empty stdin."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=ENV
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f"failed: {' '.join(command)}\n{stderr.read().decode()}")
    return seconds, usage.ru_utime + usage.ru_stime


def report(work: Path, runs: int) -> None:
    """Print the start-up figures: the medians of `runs` runs of each command."""
    config = work / "startup-config.json"
    config.write_text(json.dumps({"url": "http://127.0.0.1:9/unused"}))
    target = [PY, "-m", "target_restapi"]
    commands = {
        "python -c pass": [PY, "-c", "pass"],
        "python -c 'import singer_sdk'": [PY, "-c", "import singer_sdk"],
        "target-restapi --about": [*target, "--about"],
        "target-restapi, empty input": [*target, "--config", str(config)],
    }
    print(f"\nStart-up: median of {runs} runs (CPU = user + system)")
    timed(commands["target-restapi --about"])  # writes the .pyc files
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so a burst of load spreads over every command
        for name, command in commands.items():
            results[name].append(timed(command))
    for name, times in results.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        print(f"  {name:<34} {wall:>7.3f} s wall  {cpu:>7.3f} s CPU")
    print("  goal: --about and an empty input under 0.4 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report(Path(tmp), args.runs)


if __name__ == "__main__":
    main()
