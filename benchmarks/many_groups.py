"""Peak memory of batch mode with one group per record: 200,000 distinct rendered URLs.

Each record's URL holds its id, so no two records share a batch. Without a cap every group
would wait in memory until the end of the input; `max_open_batches` sends the oldest group
once that many are open, so peak memory stays flat as the number of groups grows. The runs
are dry runs (every request shaped and handed to the transport, none sent) so that the
figure is about the groups, not about 200,000 HTTP round trips.
Runnable alone (`python benchmarks/many_groups.py`) and from `make bench` (run.py).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from run import generate, measure, target

UNCAPPED = 10**9


def report(work: Path, records: int) -> None:
    """Print peak RSS for a tenth of the groups, all of them, and all of them uncapped."""
    small, big = work / "groups-small.singer", work / "groups.singer"
    generate(small, records // 10)
    generate(big, records)
    config = {"url": "http://127.0.0.1:9/g/#{id}", "request_mode": "batch", "dry_run": True}
    print("\nGoal 4: batch mode, one URL per record, peak memory (dry run)")
    for name, path, count, extra in [
        ("default max_open_batches", small, records // 10, {}),
        ("default max_open_batches", big, records, {}),
        ("no cap (max_open_batches 1e9)", big, records, {"max_open_batches": UNCAPPED}),
    ]:
        seconds, memory = measure(target({**config, **extra}, work), path)
        print(f"  {count:>9,} groups, {name:<30} {memory:>7.1f} MB  {seconds:>6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report(Path(tmp), args.records)


if __name__ == "__main__":
    main()
