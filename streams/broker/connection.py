"""Connections to brokers: what a profile connects with, connecting (each server within its
timeout, with the profile's credentials and TLS), and one JetStream API request. Failures
become BrokerErrors. The event loop that runs operations, and the connections a worker process
keeps between jobs, are loop's."""

from __future__ import annotations

import json
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import nats.errors
from nats.aio.client import Client, RawCredentials

from streams.broker.errors import ERROR_FIELDS, RETRYABLE_ERR_CODES, BrokerError, translate

CLIENT_NAME = "memphisadmin"  # never with "::": Memphis would take us for its own SDK
API_TIMEOUT = 5.0  # one JetStream API request


@dataclass(frozen=True)
class Connection:
    """Everything needed to connect. Secrets are excluded from repr so they never reach logs."""

    servers: tuple[str, ...]  # a tuple: connections are kept by Connection (loop._Keeper)
    connect_timeout: float = 2.0
    js_domain: str = ""
    js_api_prefix: str = ""
    user: str = ""
    password: str | None = field(default=None, repr=False)
    token: str = field(default="", repr=False)
    nkey_seed: str = field(default="", repr=False)
    creds: str = field(default="", repr=False)
    tls_ca: str = ""
    tls_client_cert: str = ""
    tls_client_key: str = field(default="", repr=False)
    tls_server_name: str = ""

    @classmethod
    def from_profile(cls, profile: Any) -> Connection:
        method = profile.auth_method
        kwargs: dict[str, Any] = {}
        if method in {"user_password", "memphis_password"}:
            # A user without a password must still send password="" or nats-py drops the user.
            kwargs.update(user=profile.username, password=profile.password or "")
        elif method == "token":
            kwargs["token"] = profile.token
        elif method == "memphis_token":
            # What `nats --user=<APP_USER>::<CONNECTION_TOKEN>` sends: one token.
            kwargs["token"] = f"{profile.username}::{profile.token}"
        elif method == "nkey":
            kwargs["nkey_seed"] = profile.nkey_seed
        elif method == "creds":
            kwargs["creds"] = profile.creds
        return cls(
            servers=tuple(profile.server_list),
            connect_timeout=profile.connect_timeout,
            js_domain=profile.js_domain,
            js_api_prefix=profile.js_api_prefix,
            tls_ca=profile.tls_ca,
            tls_client_cert=profile.tls_client_cert,
            tls_client_key=profile.tls_client_key,
            tls_server_name=profile.tls_server_name,
            **kwargs,
        )

    @property
    def wants_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_client_cert) or any(
            url.startswith("tls://") for url in self.servers
        )


async def connect(
    conn: Connection, on_error: Callable[[BaseException], None] | None = None,
) -> Client:
    """Try each server in order, each within the connect timeout. nats-py would otherwise keep
    retrying unreachable hosts for minutes. The client does not reconnect: whoever keeps it
    connects anew. `on_error` hears of the errors the server reports once connected (a
    permissions violation on a subscription, say)."""
    failures: list[str] = []
    for url in conn.servers:
        nc = Client()
        errors: list[BaseException] = []

        def noted(exc: BaseException, nc: Client = nc,
                  errors: list[BaseException] = errors) -> None:
            if not nc.is_connected:
                errors.append(exc)  # why the connect failed
            elif on_error is not None:
                on_error(exc)

        try:
            await nc.connect(servers=[url], **_connect_options(conn, noted))
            return nc
        except Exception as exc:
            # NoServersError only says the pool ran dry; the reason is the last error seen.
            cause = errors[-1] if isinstance(exc, nats.errors.NoServersError) and errors else exc
            error = translate(cause)
            if not error.retryable:  # wrong credentials or TLS: other servers will say the same
                raise error from None
            failures.append(f"{host_port(url)}: {error.message}")
    raise BrokerError("cannot reach " + "; ".join(failures), retryable=True)


def _connect_options(conn: Connection, on_error: Callable[[BaseException], None]) -> dict[str, Any]:
    async def error_cb(exc: BaseException) -> None:
        on_error(exc)  # reported through the raised error, not nats-py's printed tracebacks

    async def _ignore(*args: Any) -> None:
        pass

    options: dict[str, Any] = {
        "name": CLIENT_NAME,
        "connect_timeout": conn.connect_timeout,
        "allow_reconnect": False,
        # nats-py never gives up on a server with 0 here; 1 means two tries, back to back.
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0,
        "error_cb": error_cb,
        "disconnected_cb": _ignore,
        "closed_cb": _ignore,
    }
    if conn.password is not None:
        options.update(user=conn.user, password=conn.password)
    if conn.token:
        options["token"] = conn.token
    if conn.nkey_seed:
        options["nkeys_seed_str"] = conn.nkey_seed
    if conn.creds:
        options["user_credentials"] = RawCredentials(conn.creds)
    if conn.wants_tls:
        options["tls"] = _ssl_context(conn)
        if conn.tls_server_name:
            options["tls_hostname"] = conn.tls_server_name
    return options


def _ssl_context(conn: Connection) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=conn.tls_ca or None)
    if conn.tls_client_cert:
        # The ssl module loads client keys only from files: write 0600 files and remove them.
        with tempfile.TemporaryDirectory(prefix="memphisadmin-tls-") as folder:
            cert_path = os.path.join(folder, "cert.pem")
            key_path = os.path.join(folder, "key.pem")
            for path, text in ((cert_path, conn.tls_client_cert), (key_path, conn.tls_client_key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
            context.load_cert_chain(cert_path, key_path or None)
    return context


def host_port(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    return f"{parts.hostname}:{parts.port or 4222}"


def api_prefix(conn: Connection) -> str:
    if conn.js_domain:
        return f"$JS.{conn.js_domain}.API"
    return conn.js_api_prefix or "$JS.API"


async def request(
    nc: Client, conn: Connection, subject: str, payload: dict[str, Any] | None = None, *,
    fields: dict[int, str] = ERROR_FIELDS,
) -> dict[str, Any]:
    """One JetStream API request; an error answer becomes a BrokerError on its form field
    (`fields`: err_code → field of the form that asked)."""
    body = json.dumps(payload).encode() if payload is not None else b""
    msg = await nc.request(f"{api_prefix(conn)}.{subject}", body, timeout=API_TIMEOUT)
    answer: dict[str, Any] = json.loads(msg.data or b"{}")
    error = answer.get("error")
    if error:
        code = error.get("err_code") or error.get("code")
        description = error.get("description") or "JetStream API error"
        raise BrokerError(f"{description} (error {code})", err_code=code,
                          retryable=code in RETRYABLE_ERR_CODES or error.get("code") == 503,
                          field=fields.get(code, ""))
    return answer


def cluster_size(info: dict[str, Any]) -> int:
    """Servers gossip the client URLs of every cluster member, their own included."""
    return len(info.get("connect_urls") or []) if info.get("cluster") else 1


