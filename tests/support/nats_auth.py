"""NATS identities made by hand: NKey users, hand-signed JWTs, an operator-mode setup (operator,
system account, JetStream account, user) with its server config, and `.creds` file text."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys


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
