"""TLS certificates and SuperNode keys for a Flower deployment, made with ``cryptography`` (which Flower itself
depends on): a certificate authority, the SuperLink's certificate for the given host names and addresses, and one
elliptic-curve key pair per SuperNode (OpenSSH format, as ``flwr supernode register`` and
``flower-supernode --auth-supernode-private-key`` read them).

For a test or a first try. In production, sign the SuperLink's certificate with your organisation's authority and
let each SuperNode's owner make its own key pair: only the public key leaves their machine."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from learntolearn.errors import LtlError
from learntolearn.files import atomic_write


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    if private:
        path.chmod(0o600)


def _subject_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_certificates(folder: Path, nodes: int, hosts: list[str], days: int = 365, force: bool = False) -> list[Path]:
    """Write ``ca.crt``, ``superlink.crt``, ``superlink.key`` and ``supernode-I.key`` / ``supernode-I.pub``
    for ``I`` in ``0 .. nodes-1`` into ``folder``; refuses to overwrite without ``force``."""
    names = ["ca.crt", "superlink.crt", "superlink.key"]
    names += [f"supernode-{i}.{ext}" for i in range(nodes) for ext in ("key", "pub")]
    existing = [name for name in names if (folder / name).exists()]
    if existing and not force:
        raise LtlError(f"{folder} already holds {', '.join(existing)}; choose another folder or pass --force")
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = datetime.timedelta(days=days)
    authority_key = ec.generate_private_key(ec.SECP384R1())
    authority = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "learntolearn federation CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(authority)
        .issuer_name(authority)
        .public_key(authority_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + valid)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(authority_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP384R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(authority)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + valid)
        .add_extension(x509.SubjectAlternativeName(_subject_names(hosts)), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    pem, openssh = serialization.Encoding.PEM, serialization.Encoding.OpenSSH
    _write(folder / "ca.crt", ca.public_bytes(pem))
    _write(folder / "superlink.crt", server.public_bytes(pem))
    _write(
        folder / "superlink.key",
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        private=True,
    )
    for index in range(nodes):
        key = ec.generate_private_key(ec.SECP384R1())
        private = key.private_bytes(pem, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        _write(folder / f"supernode-{index}.key", private, private=True)
        public = key.public_key().public_bytes(openssh, serialization.PublicFormat.OpenSSH)
        _write(folder / f"supernode-{index}.pub", public)
    return [folder / name for name in names]
