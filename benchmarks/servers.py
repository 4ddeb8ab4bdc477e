"""Throwaway servers on free loopback ports for the benchmarks, when they are installed.

nginx is the receiver of goals 1 and 3, as issue 18 measured them: it reads each body and
answers 200 from C, so the figures are the sender's (the asyncio receiver.py costs each
request a Python-side wait that floor and target both pay). Without nginx
(`apt-get install nginx-light`) run.py falls back to receiver.py and says so.
redis-server serves the shared rate limit's figure.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

CONFIG = """
master_process off;  # one process: it ends with its Popen
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {folder}/body;
  client_max_body_size 0;
  client_body_buffer_size 1m;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "ok"; }}
  }}
}}
"""


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(proc: subprocess.Popen, port: int) -> bool:
    """Wait (5 s at most) until `proc` answers on `port`; kill it if it never does."""
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    proc.kill()
    return False


def start_nginx(folder: Path) -> tuple[subprocess.Popen, int] | None:
    """nginx answering 200 on a free loopback port; None when not installed."""
    binary = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if binary is None:
        return None
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(CONFIG.format(folder=folder, port=port))
    proc = subprocess.Popen(
        [binary, "-c", str(config), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return (proc, port) if listening(proc, port) else None


def start_redis() -> tuple[subprocess.Popen, str] | None:
    """redis-server on a free loopback port, its URL; None when not installed."""
    if shutil.which("redis-server") is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    return (proc, f"redis://127.0.0.1:{port}/0") if listening(proc, port) else None
