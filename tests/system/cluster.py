"""A production-shaped deployment on one machine, for the scale-out scenario.

nginx (TLS, self-signed) → two `etmf serve` (gunicorn) app servers; two `etmf worker`
processes; PostgreSQL, Redis and moto's S3 server. Every part is the real program, started
as its own process, so that one can be killed with SIGKILL and started again.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ETMF = str(Path(sys.executable).with_name("etmf"))
#: nginx connects to the app servers from this address; only it is a trusted proxy.
PROXY_SOURCE = "127.0.0.2"
START_TIMEOUT_S = 60.0


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etmf.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("etmf.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


NGINX_CONF = """
worker_processes 1;
user root;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {root}/nginx-access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    client_max_body_size 600m;

    upstream etmf {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{port} ssl;
        server_name etmf.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;

        location / {{
            proxy_pass http://etmf;
            proxy_bind {source};
            # Replace, never append: what the client sent is not believed.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Host $http_host;  # with the port: CSRF checks the Referer against it
            proxy_read_timeout 120s;
            # A dead app server: try the other one, for requests that never reached it.
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole process group: as abrupt as a machine losing power."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    root: Path
    instance: Path
    env: dict[str, str]
    app_ports: list[int]
    proxy_port: int
    cert: Path
    apps: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    nginx: Process | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.proxy_port}"

    def direct_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.app_ports[i]}"

    def etmf(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ETMF, *args, "--instance", str(self.instance)], env=self.env,
                              capture_output=True, text=True, timeout=600)

    def start_app(self, i: int) -> None:
        proc = Process(f"app{i}", [ETMF, "serve", "--instance", str(self.instance), "--bind",
                                   f"127.0.0.1:{self.app_ports[i]}", "--workers", "1",
                                   "--threads", "4"],
                       self.env, self.root / f"app{i}.log")
        proc.start()
        if len(self.apps) > i:
            self.apps[i] = proc
        else:
            self.apps.append(proc)
        wait_ready(f"{self.direct_url(i)}/readyz", proc, self.root / f"app{i}.log")

    def start_worker(self, i: int) -> None:
        proc = Process(f"worker{i}", [ETMF, "worker", "--instance", str(self.instance),
                                      "--poll", "1"],
                       self.env, self.root / f"worker{i}.log")
        proc.start()
        if len(self.workers) > i:
            self.workers[i] = proc
        else:
            self.workers.append(proc)

    def start_nginx(self) -> None:
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.root / d).mkdir(exist_ok=True)
        key = self.cert.with_name("tls.key")
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;"
                            for p in self.app_ports)
        conf = self.root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=self.root, servers=servers, port=self.proxy_port,
                                          cert=self.cert, key=key, source=PROXY_SOURCE))
        self.nginx = Process("nginx", ["/usr/sbin/nginx", "-c", str(conf), "-p", str(self.root),
                                       "-g", "daemon off;"], self.env, self.root / "nginx.log")
        self.nginx.start()
        wait_ready(f"{self.url}/readyz", self.nginx, self.root / "nginx-error.log",
                   verify=str(self.cert))

    def stop(self) -> None:
        for proc in [*self.workers, *self.apps, *([self.nginx] if self.nginx else [])]:
            proc.stop()

    def logs(self) -> str:
        out = []
        for path in sorted(self.root.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)


def wait_ready(url: str, proc: Process, log: Path, verify: bool | str = True) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.popen is not None
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited at start-up:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        try:
            proc.popen.wait(timeout=0.1)  # the poll interval; also notices an early exit
        except subprocess.TimeoutExpired:
            continue
    raise RuntimeError(f"{proc.name} not ready within {START_TIMEOUT_S:.0f} s:\n"
                       f"{log.read_text(errors='replace')[-3000:]}")
