"""SSH tunnel: requests reach the endpoint through a real OpenSSH server started per module.

The proof that a request went through the tunnel is sshd's own log: a `direct-tcpip`
channel to the endpoint's host and port for every connection the target made.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pytest_httpserver import HTTPServer
from support.run import NO_RETRY, Recorder, clean_env, run_target
from werkzeug import Response

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
PASSPHRASE = "open sesame"
TUNNEL_LOG = re.compile(r"ssh_tunnel: 127\.0\.0\.1:\d+ reaches (\S+):(\d+) through")

pytestmark = [
    pytest.mark.sshd,
    # One worker (pytest-xdist) runs this module, so its sshd starts once per run.
    pytest.mark.xdist_group("sshd"),
    pytest.mark.skipif(
        not os.access(SSHD, os.X_OK), reason=f"OpenSSH server not installed ({SSHD} not found)"
    ),
]


@dataclass
class Keys:
    """A key pair as files and texts: OpenSSH private text, `type base64` public line."""

    private: str
    public: str


def make_key(path: Path, passphrase: str | None = None) -> Keys:
    key = ed25519.Ed25519PrivateKey.generate()
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    path.write_text(private)
    path.chmod(0o600)
    return Keys(private, public)


def free_port() -> int:
    """A port nothing listens on now (sshd cannot be given port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Sshd:
    proc: subprocess.Popen
    port: int
    log: Path
    user: str
    host_key: Keys
    user_key: Keys
    encrypted_key: Keys
    stranger_key: Keys  # not in authorized_keys

    def settings(self, **overrides) -> dict:
        """An enabled ssh_tunnel setting that logs in with the user key."""
        return {
            "enable": True,
            "host": "127.0.0.1",
            "port": self.port,
            "username": self.user,
            "private_key": self.user_key.private,
            **overrides,
        }

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key.public}"

    def channels_to(self, host: str, port: int) -> int:
        """Forwarded channels sshd opened to host:port so far."""
        wanted = f"target {host} port {port}"
        lines = self.log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if "direct_tcpip" in line and wanted in line)

    def sessions(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """OpenSSH on a loopback port, accepting the generated user key for the current user."""
    home = tmp_path_factory.mktemp("sshd")
    user = getpass.getuser()
    host_key = make_key(home / "host_key")
    user_key = make_key(home / "user_key")
    encrypted_key = make_key(home / "encrypted_key", PASSPHRASE)
    stranger_key = make_key(home / "stranger_key")
    (home / "authorized_keys").write_text(f"{user_key.public}\n{encrypted_key.public}\n")
    proc, log, port = start_sshd(
        home,
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPasswordAuthentication no\n"
        f"PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowUsers {user}\n",
    )
    yield Sshd(proc, port, log, user, host_key, user_key, encrypted_key, stranger_key)
    proc.terminate()
    proc.wait(timeout=10)


def start_sshd(home: Path, auth_lines: str) -> tuple[subprocess.Popen, Path, int]:
    """sshd -D on a free 127.0.0.1 port with `home`/host_key and the given login settings.

    Ready once its log says it listens: a port taken between `free_port` and sshd's bind
    (another test's server) makes sshd exit, and another port is tried.
    """
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    log = home / "sshd.log"
    for _attempt in range(5):
        port = free_port()
        config = home / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {home / 'host_key'}\n"
            f"PidFile {home / 'sshd.pid'}\nStrictModes no\nUsePAM no\n"
            f"KbdInteractiveAuthentication no\nAllowTcpForwarding yes\nLogLevel DEBUG1\n"
            f"{auth_lines}"
        )
        log.unlink(missing_ok=True)
        proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)])
        listening = f"Server listening on 127.0.0.1 port {port}"
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            if log.exists() and listening in log.read_text(errors="replace"):
                return proc, log, port
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=10)
        why = log.read_text(errors="replace") if log.exists() else "no log"
        if "Address already in use" not in why:
            pytest.skip(f"could not start sshd: {why.strip()[-500:]}")
    pytest.fail(f"sshd found no free port in 5 attempts: {why.strip()[-500:]}")


LOGIN_PASSWORD = "pw-Tunnel-8-secret"


@pytest.fixture(scope="module")
def password_sshd(tmp_path_factory):
    """sshd that accepts only a password, for a throwaway system user (needs root)."""
    if os.geteuid() != 0 or not all(map(shutil.which, ("useradd", "chpasswd", "userdel"))):
        pytest.skip("password login needs a throwaway system user: run the tests as root")
    user = f"tunnelpw{os.getpid()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", user], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{user}:{LOGIN_PASSWORD}".encode(), check=True)
        home = tmp_path_factory.mktemp("password_sshd")
        make_key(home / "host_key")
        proc, _log, port = start_sshd(
            home,
            f"PasswordAuthentication yes\nPubkeyAuthentication no\nAllowUsers {user}\n",
        )
        yield {"enable": True, "host": "127.0.0.1", "port": port, "username": user}
        proc.terminate()
        proc.wait(timeout=10)
    finally:
        subprocess.run(["userdel", user], check=False)


def records(stream: str, count: int = 1) -> str:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    lines = [{"type": "SCHEMA", "stream": stream, "schema": schema}]
    for n in range(1, count + 1):
        lines.append({"type": "RECORD", "stream": stream, "record": {"id": n}})
    lines.append({"type": "STATE", "value": {"done": stream}})
    return "".join(json.dumps(line) + "\n" for line in lines)


def key_lines(*keys: Keys) -> list[str]:
    return [line for k in keys for line in k.private.splitlines() if not line.startswith("-")]


def assert_no_key_material(text: str, sshd: Sshd) -> None:
    for line in key_lines(sshd.user_key, sshd.encrypted_key, sshd.stranger_key):
        assert line not in text
    assert PASSPHRASE not in text


def test_http_goes_through_the_tunnel(sshd, httpserver, recorder, tmp_path):
    url = httpserver.url_for("/in")
    config = {"url": url, "ssh_tunnel": sshd.settings()}
    result = run_target(config, records("users", count=3), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 2, 3]
    assert recorder.requests[0].header("Host") == f"localhost:{httpserver.port}"
    assert sshd.channels_to("localhost", httpserver.port) >= 1
    assert TUNNEL_LOG.search(result.stderr).groups() == ("localhost", str(httpserver.port))
    assert "host key is NOT checked" in result.stderr  # no host_key given
    assert "ssh_tunnel: closed" in result.stderr
    assert_no_key_material(result.stderr, sshd)


def test_proxy_variables_do_not_send_requests_around_the_tunnel(
    sshd, httpserver, recorder, tmp_path
):
    proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens: a proxied request fails
    names = ("http_proxy", "https_proxy", "all_proxy")
    env = clean_env(**dict.fromkeys(names, proxy), no_proxy="", NO_PROXY="")
    config = {"url": httpserver.url_for("/in"), "max_retries": 0, "ssh_tunnel": sshd.settings()}
    result = run_target(config, records("users"), tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 1
    assert sshd.channels_to("localhost", httpserver.port) >= 1


@pytest.fixture
def tls_server(tmp_path):
    """HTTPS on localhost with a certificate for `localhost` only; records SNI names."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = HTTPServer(host="localhost", port=0, ssl_context=context)
    recorder = Recorder()
    server.expect_request(re.compile(".*")).respond_with_handler(recorder)
    server.start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield server, recorder, names, ca_file
    server.clear()
    if server.is_running():
        server.stop()


def tls_env() -> dict[str, str]:
    """requests lets these variables win over the session's `verify` (the ca_bundle setting)."""
    env = clean_env()
    env.pop("REQUESTS_CA_BUNDLE", None)
    env.pop("CURL_CA_BUNDLE", None)
    return env


def test_https_goes_through_the_tunnel_and_checks_the_url_host(sshd, tls_server, tmp_path):
    server, recorder, names, ca_file = tls_server
    config = {
        "url": f"https://localhost:{server.port}/in",
        "ca_bundle": str(ca_file),
        "ssh_tunnel": sshd.settings(host_key=sshd.known_hosts_line()),
    }
    result = run_target(config, records("users", count=2), tmp_path, env=tls_env())
    assert result.returncode == 0, result.stderr
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 2]
    assert recorder.requests[0].header("Host") == f"localhost:{server.port}"
    assert set(names) == {"localhost"}  # SNI carries the URL's host, not 127.0.0.1
    assert sshd.channels_to("localhost", server.port) >= 1
    assert "certificate" not in result.stderr.lower()


def test_https_still_refuses_a_certificate_for_another_host(sshd, tls_server, tmp_path):
    server, recorder, _names, ca_file = tls_server
    config = {
        "url": f"https://127.0.0.1:{server.port}/in",  # the certificate names localhost only
        "ca_bundle": str(ca_file),
        "max_retries": 0,
        "ssh_tunnel": sshd.settings(),
    }
    result = run_target(config, records("users"), tmp_path, env=tls_env())
    assert result.returncode == 1
    assert "certificate" in result.stderr.lower()
    assert recorder.requests == []
    assert sshd.channels_to("127.0.0.1", server.port) >= 1


def test_each_destination_gets_its_own_forward(sshd, httpserver, recorder, tmp_path):
    # Records may not choose hosts through the tunnel (test_url_safety.py): each stream's
    # host is in the settings, and each gets its own forward, opened at start-up.
    port = httpserver.port
    config = {
        "url": f"http://localhost:{port}/a",
        "streams": {"other": {"url": f"http://127.0.0.1:{port}/b"}},
        "ssh_tunnel": sshd.settings(host_key=sshd.known_hosts_line()),
    }
    result = run_target(config, records("users") + records("other"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.path for seen in recorder.requests] == ["/a", "/b"]
    opened = [m.groups() for m in TUNNEL_LOG.finditer(result.stderr)]
    assert sorted(opened) == [("127.0.0.1", str(port)), ("localhost", str(port))]
    assert sshd.channels_to("localhost", port) >= 1
    assert sshd.channels_to("127.0.0.1", port) >= 1


def test_a_dropped_tunnel_is_reopened(sshd, httpserver, recorder, live_target):
    config = {
        "url": httpserver.url_for("/in"),
        "max_backoff_seconds": 0.2,
        "ssh_tunnel": sshd.settings(host_key=sshd.known_hosts_line()),
    }
    target = live_target(config)
    schema = {"type": "SCHEMA", "stream": "users", "schema": {"type": "object", "properties": {}}}
    target.send(json.dumps(schema))
    for n in (1, 2):
        target.send(json.dumps({"type": "RECORD", "stream": "users", "record": {"id": n}}))
        target.send(json.dumps({"type": "STATE", "value": {"n": n}}))
        assert json.loads(target.next_line()) == {"n": n}
        if n == 1:
            sessions = sshd.sessions()
            assert sessions, "the target holds no SSH connection"
            for pid in sessions:
                os.kill(pid, signal.SIGTERM)  # drops the SSH connection under the tunnel
    assert target.finish() == 0, target.stderr
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 2]
    assert "dropped; reopening it" in target.stderr
    assert len(TUNNEL_LOG.findall(target.stderr)) == 2


def test_a_tunnel_dropped_under_a_request_is_a_retried_connection_error(
    sshd, httpserver, recorder, tmp_path
):
    def drop_the_first(seen) -> None:
        if len(recorder.requests) == 1:
            for pid in sshd.sessions():
                os.kill(pid, signal.SIGTERM)  # the answer has no way back
            time.sleep(0.3)

    recorder.on_request = drop_the_first
    config = {
        "url": httpserver.url_for("/in"),
        "max_backoff_seconds": 0.2,
        "ssh_tunnel": sshd.settings(host_key=sshd.known_hosts_line()),
    }
    result = run_target(config, records("users"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 1]  # at least once
    summary = json.loads(result.stderr[result.stderr.rindex('{"summary"') :].splitlines()[0])
    assert summary["summary"]["total"]["retries"] >= 1  # the drop counted as a retry
    assert "dropped; reopening it" in result.stderr


def test_tunnel_is_closed_after_sigterm(sshd, httpserver, recorder, live_target):
    config = {"url": httpserver.url_for("/in"), "ssh_tunnel": sshd.settings()}
    target = live_target(config)
    target.send(*records("users").splitlines())
    target.next_line()
    target.proc.send_signal(signal.SIGTERM)
    assert target.wait() == 0, target.stderr
    assert "ssh_tunnel: closed" in target.stderr


def test_tunnel_is_closed_after_a_failed_delivery(sshd, httpserver, recorder, tmp_path):
    recorder.respond = lambda _seen: Response("bad request", status=400)
    config = {"url": httpserver.url_for("/in"), **NO_RETRY, "ssh_tunnel": sshd.settings()}
    result = run_target(config, records("users"), tmp_path)
    assert result.returncode != 0
    assert len(recorder.requests) == 1  # the request went through the tunnel and failed
    assert "400" in result.stderr
    assert "ssh_tunnel: closed" in result.stderr


def test_password_login(password_sshd, httpserver, recorder, tmp_path):
    config = {
        "url": httpserver.url_for("/in"),
        "ssh_tunnel": {**password_sshd, "password": LOGIN_PASSWORD},
    }
    result = run_target(
        config,
        records("users"),
        tmp_path,
        env=clean_env(TARGET_RESTAPI_LOGLEVEL="DEBUG", LOGLEVEL="DEBUG"),
    )
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 1
    assert "ssh_tunnel: closed" in result.stderr
    assert LOGIN_PASSWORD not in result.stdout + result.stderr


def test_a_wrong_password_fails_at_start_without_showing_it(password_sshd, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/in"),
        "ssh_tunnel": {**password_sshd, "password": "pw-Wrong-9"},
    }
    result = run_target(config, records("users"), tmp_path)
    assert result.returncode != 0
    assert "rejected the login" in result.stderr
    assert "pw-Wrong-9" not in result.stderr
    assert "Traceback" not in result.stderr


def test_matching_host_key_gives_no_warning(sshd, httpserver, recorder, tmp_path):
    line = sshd.host_key.public  # `type base64` alone is accepted as well
    config = {"url": httpserver.url_for("/in"), "ssh_tunnel": sshd.settings(host_key=line)}
    result = run_target(config, records("users"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 1
    assert "NOT checked" not in result.stderr


def test_encrypted_key_with_its_passphrase(sshd, httpserver, recorder, tmp_path):
    settings = sshd.settings(
        private_key=sshd.encrypted_key.private, private_key_password=PASSPHRASE
    )
    config = {"url": httpserver.url_for("/in"), "ssh_tunnel": settings}
    result = run_target(config, records("users"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 1
    assert_no_key_material(result.stderr, sshd)


def fails_at_start(sshd, httpserver, tmp_path, settings: dict) -> str:
    """Run with `settings`; assert a start-up failure before any request; return stderr."""
    config = {"url": httpserver.url_for("/in"), "ssh_tunnel": settings}
    result = run_target(config, records("users"), tmp_path)
    assert result.returncode == 1
    assert result.states == []
    assert "Traceback" not in result.stderr
    assert_no_key_material(result.stderr, sshd)
    assert httpserver.log == []
    return result.stderr


def test_unreadable_key_fails_at_start_without_showing_it(sshd, httpserver, tmp_path):
    text = sshd.user_key.private
    broken = "\n".join(text.splitlines()[:3] + text.splitlines()[-1:])  # lines missing
    stderr = fails_at_start(sshd, httpserver, tmp_path, sshd.settings(private_key=broken))
    assert "ssh_tunnel.private_key is not a readable private key" in stderr


def test_encrypted_key_without_passphrase_fails_at_start(sshd, httpserver, tmp_path):
    settings = sshd.settings(private_key=sshd.encrypted_key.private)
    stderr = fails_at_start(sshd, httpserver, tmp_path, settings)
    assert "set ssh_tunnel.private_key_password" in stderr


def test_wrong_passphrase_fails_at_start(sshd, httpserver, tmp_path):
    settings = sshd.settings(
        private_key=sshd.encrypted_key.private, private_key_password="not the passphrase"
    )
    stderr = fails_at_start(sshd, httpserver, tmp_path, settings)
    assert "private_key_password does not decrypt" in stderr
    assert "not the passphrase" not in stderr


def test_no_key_and_no_password_fails_at_start(sshd, httpserver, tmp_path):
    settings = sshd.settings(private_key=None)
    stderr = fails_at_start(sshd, httpserver, tmp_path, settings)
    assert "needs 'ssh_tunnel.private_key' or 'ssh_tunnel.password'" in stderr


def test_unreachable_ssh_server_fails_at_start(sshd, httpserver, tmp_path):
    stderr = fails_at_start(sshd, httpserver, tmp_path, sshd.settings(port=free_port()))
    assert "cannot connect to the SSH server" in stderr


def test_rejected_login_fails_at_start(sshd, httpserver, tmp_path):
    settings = sshd.settings(private_key=sshd.stranger_key.private)
    stderr = fails_at_start(sshd, httpserver, tmp_path, settings)
    assert f"rejected the login as {sshd.user}@127.0.0.1:{sshd.port}" in stderr


def test_other_host_key_fails_at_start(sshd, httpserver, tmp_path):
    other = make_key(tmp_path / "other_host_key")
    settings = sshd.settings(host_key=f"[127.0.0.1]:{sshd.port} {other.public}")
    stderr = fails_at_start(sshd, httpserver, tmp_path, settings)
    assert "not the key of ssh_tunnel.host_key" in stderr
