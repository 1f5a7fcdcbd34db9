"""Certificates for the TLS tests: a CA, a server certificate for localhost and 127.0.0.1, a
client certificate, and the nats-server `tls {}` block that uses them."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.nats_server import conf_str
from tests.support.network import LOOPBACK


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
        f"  cert_file: {conf_str(m.server_cert_path)}\n"
        f"  key_file: {conf_str(m.server_key_path)}\n"
        f"  ca_file: {conf_str(m.ca_path)}\n"
        f"  verify: {'true' if verify_clients else 'false'}\n"
        "  timeout: 5\n"
        "}\n"
    )
