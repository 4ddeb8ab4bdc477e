"""Benchmarks of target-restapi against floor scripts, side by side in one run.

Goals 1 and 3 send into nginx when it is installed (as issue 18 measured), else into
receiver.py; goal 2 into receiver.py, which can answer late.
Goal 1: batch mode (1,000 records a request, validation on) vs floor_batch.py, plus one row
each with gzip compression, response files, idempotency keys and an error file on; the runs
are interleaved (floor, target, each feature, again) and medians reported, so a machine
loaded by something else weighs on every row alike.
Goal 2: single mode, max_concurrency 32, receiver answering after 20 ms, vs floor_single.py.
Goal 3: one mode with 300,000 records: peak memory of the target.
Goal 4: batch mode with 200,000 distinct URL groups: peak memory (many_groups.py).
Start-up: `--about` and an empty input, beside `python -c pass` and `import singer_sdk`
(startup.py).
Shared rate: the cost of the Redis step per request (rate_limit_redis_url, a budget too high
to wait on), when redis-server is on PATH.
Prints records/s, ratios and peak memory (max RSS of each process, from wait4).

Goal 1 reads 1,000,000 records; BENCH_RECORDS=200000 (or --records) makes a quick run.
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

import servers
import startup

HERE = Path(__file__).parent
PY = sys.executable


def start_receiver(delay_ms: float) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [PY, str(HERE / "receiver.py"), "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE
    )
    port = int(proc.stdout.readline())
    return proc, port


def generate(path: Path, records: int, pad: int = 0) -> None:
    with path.open("wb") as out:
        subprocess.run(
            [PY, str(HERE / "generate.py"), "--records", str(records), "--pad", str(pad)],
            stdout=out,
            check=True,
        )


def measure(command: list[str], input_path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process reading `input_path` on stdin.

    With .pyc files, like an installed package (startup.ENV): not compiled on every run.
    """
    with input_path.open("rb") as stdin, tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=log, env=startup.ENV
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:  # its log only then: the figures stay legible
            log.seek(0)
            sys.stderr.buffer.write(log.read()[-4000:])
            raise SystemExit(f"failed: {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1024


def target(config: dict, workdir: Path) -> list[str]:
    path = workdir / f"config-{len(list(workdir.iterdir()))}.json"
    path.write_text(json.dumps(config))
    return [PY, "-m", "target_restapi", "--config", str(path)]


def best(runs: int, command: list[str], input_path: Path) -> tuple[float, float]:
    results = [measure(command, input_path) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results)


def row(name: str, records: int, seconds: float, memory: float, note: str = "") -> None:
    rate = f"{records / seconds:>12,.0f} rec/s"
    print(f"  {name:<34} {rate}  {seconds:>7.2f} s  {memory:>7.1f} MB  {note}".rstrip())


def batch_table(args: argparse.Namespace, url: str, work: Path, data: Path) -> None:
    """Goal 1: the floor, the target, and the target with each feature on; medians."""
    print(f"\nGoal 1: batch mode, {args.records:,} records, 1,000 per request, validation on")
    base = {"url": url, "request_mode": "batch", "batch_size": 1000}
    errors = {"fail_on_error": False, "error_file_path": str(work / "errors.jsonl")}
    responses = {"save_responses": True, "response_file_path": str(work / "responses")}
    variants = {
        "floor (orjson + requests)": [PY, str(HERE / "floor_batch.py"), url, "1000"],
        "target-restapi": target(base, work),
        "  with compression gzip": target({**base, "compression": "gzip"}, work),
        "  with response files": target({**base, **responses}, work),
        "  with idempotency keys": target({**base, "idempotency_key_header": "Key"}, work),
        "  with an error file": target({**base, **errors}, work),
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, command in variants.items():
            runs[name].append(measure(command, data))
    floor = statistics.median(seconds for seconds, _ in runs["floor (orjson + requests)"])
    for name, results in runs.items():
        seconds = statistics.median(s for s, _ in results)
        row(name, args.records, seconds, max(m for _, m in results), f"{floor / seconds:.0%}")
    ours = statistics.median(s for s, _ in runs["target-restapi"])
    print(f"  batch ratio: {floor / ours:.0%} of the floor (goal: at least 125%), medians")


def shared_rate(args: argparse.Namespace, url: str, work: Path, data: Path) -> None:
    """Single mode with and without the Redis step; the difference is its cost per request."""
    print(f"\nShared rate: single mode, {args.single_records:,} records, one at a time")
    redis = servers.start_redis()
    if redis is None:
        print("  skipped: redis-server is not installed")
        return
    proc, redis_url = redis
    try:
        budget = {"url": url + "/#{id}", "max_requests_per_second": 1_000_000}
        plain = best(args.runs, target(budget, work), data)
        shared = best(args.runs, target({**budget, "rate_limit_redis_url": redis_url}, work), data)
    finally:
        proc.kill()
        proc.wait(10)
    row("in-process rate", args.single_records, *plain)
    row("rate shared through Redis", args.single_records, *shared)
    cost = (shared[0] - plain[0]) / args.single_records * 1e6
    print(f"  the Redis step: about {cost:.0f} µs a request")


def single(args: argparse.Namespace, work: Path, data: Path) -> None:
    """Goal 2: floor and target run in turn, so both see the same load; the median pair counts.

    One URL per record: requests to the same URL are never in flight together.
    """
    slow, port = start_receiver(20)
    try:
        url = f"http://127.0.0.1:{port}/ingest"
        records = args.single_records
        print(f"\nGoal 2: single mode, {records:,} records, answers after 20 ms")
        floor_command = [PY, str(HERE / "floor_single.py"), url, "32"]
        ours_command = target({"url": url + "/#{id}", "max_concurrency": 32}, work)
        pairs = [
            (measure(floor_command, data), measure(ours_command, data))
            for _ in range(args.single_runs)
        ]
    finally:
        slow.kill()
    pairs.sort(key=lambda pair: pair[0][0] / pair[1][0])
    floor, ours = pairs[len(pairs) // 2]
    ratios = ", ".join(f"{f[0] / o[0]:.0%}" for f, o in pairs)
    row("floor (32 threads, own sessions)", records, *floor)
    row("target-restapi max_concurrency 32", records, *ours)
    print(f"  ratio: {floor[0] / ours[0]:.0%} of the floor, median of {len(pairs)} ({ratios})")
    print("  goal: at least 120%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    records = int(os.environ.get("BENCH_RECORDS", 1_000_000))
    parser.add_argument("--records", type=int, default=records, help="goal 1 (BENCH_RECORDS)")
    parser.add_argument("--groups", type=int, default=200_000, help="goal 4: URL groups")
    parser.add_argument("--single-records", type=int, default=5_000)
    parser.add_argument("--one-records", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3, help="median of N for goal 1")
    parser.add_argument("--startup-runs", type=int, default=11, help="median of N for start-up")
    parser.add_argument(
        "--single-runs", type=int, default=7, help="floor/target pairs for goal 2 (median)"
    )
    parser.add_argument(
        "--goals", default="s123r4", help="goals to run (s: start-up, r: shared rate), e.g. 2"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, small, big = work / "batch.singer", work / "single.singer", work / "one.singer"
        generate(small, args.single_records)
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        if "s" in args.goals:
            startup.report(work, args.startup_runs)  # first: no receiver running yet

        nginx_started = servers.start_nginx(work / "nginx")
        fast, port = nginx_started or start_receiver(0)
        if nginx_started:
            print("receiver (goals 1, 3, shared rate): nginx")
        else:
            print("receiver (goals 1, 3, shared rate): benchmarks/receiver.py (no nginx found)")
        try:
            url = f"http://127.0.0.1:{port}/ingest"
            if "1" in args.goals:
                generate(data, args.records)
                batch_table(args, url, work, data)
            if "3" in args.goals:
                generate(big, args.one_records, pad=60)
                size = big.stat().st_size / 1e6
                print(f"\nGoal 3: one mode, {args.one_records:,} records ({size:.0f} MB)")
                seconds, memory = measure(target({"url": url, "request_mode": "one"}, work), big)
                row("target-restapi", args.one_records, seconds, memory)
                print(f"  peak memory: {memory:.0f} MB (goal: under 150 MB)")
            if "r" in args.goals:
                shared_rate(args, url, work, small)
        finally:
            fast.terminate()
            fast.wait(10)

        if "2" in args.goals:
            single(args, work, small)

        if "4" in args.goals:
            from many_groups import report  # imports this module: loaded only when run

            report(work, args.groups)


if __name__ == "__main__":
    main()
