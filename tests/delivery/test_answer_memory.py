"""A huge answer costs neither memory nor time: at most what is kept of it is read.

A loopback server answers 512 MiB (with Content-Length, or chunked); the target runs as
a subprocess and its peak memory (ru_maxrss, from wait4) must stay far below that. The
connection is dropped after the kept start: the server never gets to send it all.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from support.loopback import items_input
from support.run import RUN_TIMEOUT, TARGET, clean_env, write_config
from support.slow_servers import SlowServer, huge

ANSWER = 512 << 20
PEAK_LIMIT_KIB = 200 << 10  # 200 MiB: the interpreter and its imports take about 60


def run_measured(config: dict, tmp_path) -> tuple[int, int, str]:
    """Run the target on one record; its exit code, peak RSS (KiB) and stderr."""
    cfg = write_config(config, tmp_path)
    err_path = tmp_path / "stderr"
    with (tmp_path / "stdout").open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [*TARGET, "--config", str(cfg)],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            env=clean_env(),
        )
        proc.stdin.write(items_input(1, "s").encode())
        proc.stdin.close()
        deadline = time.monotonic() + RUN_TIMEOUT  # a hang guard, not a speed assertion
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here
                break
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the target did not exit within {RUN_TIMEOUT}s")
            time.sleep(0.05)
    return proc.returncode, usage.ru_maxrss, err_path.read_text(errors="replace")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_answer_is_not_read_and_its_response_entry_keeps_64_kib(tmp_path, chunked):
    folder = tmp_path / "responses"
    with SlowServer(huge(ANSWER, chunked=chunked)) as server:
        config = {
            "url": server.url(),
            "save_responses": True,
            "response_file_path": str(folder),
        }
        code, peak_kib, stderr = run_measured(config, tmp_path)
        sent = server.sent

    assert code == 0, stderr
    assert peak_kib < PEAK_LIMIT_KIB, f"peak memory {peak_kib >> 10} MiB for a 512 MiB answer"
    assert sent < ANSWER / 2, "the whole answer was read instead of dropping the connection"
    (entry,) = [json.loads(line) for line in next(folder.iterdir()).read_text().splitlines()]
    assert entry["status"] == 200
    assert entry["body"] == "x" * (64 * 1024) + "…"  # what response files always kept


def test_a_huge_error_answer_is_not_read_and_its_excerpt_is_kept(tmp_path):
    with SlowServer(huge(ANSWER, chunked=False, status=500)) as server:
        config = {"url": server.url(), "max_retries": 1, "max_backoff_seconds": 0.01}
        code, peak_kib, stderr = run_measured(config, tmp_path)
        requests = server.requests

    assert code == 1
    assert peak_kib < PEAK_LIMIT_KIB, f"peak memory {peak_kib >> 10} MiB for a 512 MiB answer"
    assert requests == 2  # the dropped connection did not spoil the retry
    assert "answered 500 Answer: " + "x" * 300 + "…" in stderr
