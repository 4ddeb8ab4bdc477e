"""Demo: deliver the sample Singer files to a local receiver and show what happened.

Starts demo/receiver.py on a free port, writes one config per scenario to demo/out/,
pipes a sample through `target-restapi --config ...`, and prints the requests the
receiver got, the STATE lines the target wrote and the target's summary. The target's
full log goes to demo/out/<scenario>.log. The receiver is stopped however the run ends.

    .venv/bin/python demo/run.py        (or: make demo)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo" / "out"
TARGET = Path(sys.executable).parent / "target-restapi"


def scenarios(base: str) -> list[tuple[str, str, str, dict]]:
    """(name, what it shows, sample file, config) for each run of the demo."""
    return [
        (
            "single",
            "request_mode single: one PUT per record, URL filled from the record",
            "sample_data/users.singer",
            {"url": f"{base}/users/#{{id}}", "method": "PUT"},
        ),
        (
            "batch",
            "request_mode batch: batch_size 2 for orders; payments overridden per stream; "
            "a STATE is printed once the records before it are delivered (it cuts no batch)",
            "sample_data/orders.singer",
            {
                "url": f"{base}/orders",
                "request_mode": "batch",
                "batch_size": 2,
                "headers": {"X-Source": "demo"},
                # A `streams` entry inherits every setting it does not name.
                "streams": {
                    "payments": {
                        "url": f"{base}/payments",
                        "batch_size": 10,
                    }
                },
            },
        ),
    ]


def start_receiver(log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start the receiver with its output in `log_path`; return it and its base URL."""
    log = log_path.open("w")
    receiver = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "demo" / "receiver.py")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        first = log_path.read_text().partition("\n")
        if first[1] and first[0].startswith("listening on "):
            return receiver, first[0].removeprefix("listening on ")
        if receiver.poll() is not None:
            break
        time.sleep(0.05)
    stop(receiver)
    sys.exit(f"demo: the receiver did not start; its output:\n{log_path.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """Terminate a process and wait for it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summary(log_text: str) -> list[str]:
    """The target's per-stream summary lines and any error lines, without timestamps."""
    keep = []
    for line in log_text.splitlines():
        message = line.rsplit(" | ", 1)[-1]
        if "records received" in message or "| ERROR" in line or "| CRITICAL" in line:
            keep.append(message)
    return keep


def run(name: str, about: str, sample: str, config: dict, receiver_log: Path) -> bool:
    """Run one scenario and print what the receiver got; return whether the target succeeded."""
    config_path = OUT / f"config.{name}.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    target_log = OUT / f"{name}.log"
    seen = len(receiver_log.read_text())

    print(f"\n=== {name}: {about}")
    print(f"$ target-restapi --config demo/out/{config_path.name} < {sample}")
    print("config:", json.dumps(config))
    with (ROOT / sample).open("rb") as stdin, target_log.open("wb") as stderr:
        result = subprocess.run(
            [str(TARGET), "--config", str(config_path)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            check=False,
        )
    print("--- the receiver got:")
    for line in receiver_log.read_text()[seen:].splitlines():
        print(f"  {line}")
    print("--- STATE lines the target wrote (stdout):")
    for line in result.stdout.decode().splitlines():
        print(f"  {line}")
    print(f"--- target summary, exit code {result.returncode} (log: demo/out/{target_log.name}):")
    for line in summary(target_log.read_text()):
        print(f"  {line}")
    return result.returncode == 0


def main() -> int:
    """Run every scenario against one receiver; exit 1 if any target run failed."""
    if not TARGET.exists():
        sys.exit(f"demo: {TARGET} not found; run `make venv` first")
    OUT.mkdir(exist_ok=True)
    receiver_log = OUT / "receiver.log"
    receiver, base = start_receiver(receiver_log)
    try:
        print(f"receiver: {base} (its log: demo/out/{receiver_log.name})")
        results = [run(*scenario, receiver_log) for scenario in scenarios(base)]
    finally:
        stop(receiver)
    print("\nreceiver stopped.", "demo OK" if all(results) else "demo FAILED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
