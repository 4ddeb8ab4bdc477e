"""nginx as the receiver of goals 1 and 3, as issue 18 measured them, when it is installed.

nginx reads each body and answers 200 from C, so the figures are the sender's: the asyncio
receiver.py costs each request a Python-side wait that floor and target both pay. Without
nginx (`apt-get install nginx-light`) run.py falls back to receiver.py and says so.
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


def start(folder: Path) -> tuple[subprocess.Popen, int] | None:
    """A throwaway nginx answering 200 on a free loopback port; None when not installed."""
    binary = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(CONFIG.format(folder=folder, port=port))
    proc = subprocess.Popen(
        [binary, "-c", str(config), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    proc.kill()
    return None
