"""`lazyjack init` on the master: the CA, the bootstrap token and the CA hash, written into the config file."""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
import string
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from lazyjack.config.edit import update_config_file
from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.config.rules import TOKEN_RE
from lazyjack.errors import PreflightError
from lazyjack.host.files import Files

TOKEN_ALPHABET = string.ascii_lowercase + string.digits
CA_DAYS = 3650


def new_token() -> str:
    """A bootstrap token in kubeadm's format: 6 and 16 characters of [a-z0-9]."""
    def pick(count: int) -> str:
        return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(count))

    return f"{pick(6)}.{pick(16)}"


def ca_cert_hash(cert_pem: bytes) -> str:
    """kubeadm's discovery hash: hex SHA-256 of the certificate's DER SubjectPublicKeyInfo."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def make_ca(common_name: str) -> tuple[bytes, bytes]:
    """A new RSA-2048 key and a self-signed CA certificate for it, both PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _pair_matches(key_pem: bytes, cert_pem: bytes) -> bool:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Unreadable, encrypted (TypeError: no password) or of an unknown type: make a new pair.
        return False
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(key.public_key().public_bytes(*fmt) == cert.public_key().public_bytes(*fmt))


def check_work_area(files: Files, path: str) -> None:
    """Refuse a work area that is a symlink or owned by another user (someone could swap the CA)."""
    if files.is_symlink(path):
        raise PreflightError(f"the work area {files.resolve(path, follow=False)} is a symlink; use a real directory")
    st = files.stat(path)
    if st is not None and st.st_uid != os.geteuid():
        raise PreflightError(
            f"the work area {files.resolve(path)} is owned by uid {st.st_uid}, not by this user ({os.geteuid()}); "
            "choose another general.work-area or fix its owner"
        )


def run_init(files: Files, config: Config, plan: Plan, node_name: str, *, config_path: Path,
             dry_run: bool, report: Callable[[str], None]) -> bool:
    """Make (or reuse) the CA and token and write them into the config file; True if anything changed."""
    node = plan.nodes[node_name]
    if not node.is_master:
        raise PreflightError(f"init runs on the master ({plan.master.name}), not on {node_name}")
    if config.general.insecure:
        report("init is not needed in insecure mode (general.insecure: true); nothing changed")
        return False
    area = config.work_area.rstrip("/")
    certs = f"{area}/certs"
    check_work_area(files, area)
    check_work_area(files, certs)
    key_pem, cert_pem = files.read_bytes(f"{certs}/ca.key"), files.read_bytes(f"{certs}/ca.crt")
    changed = False
    if key_pem is not None and cert_pem is not None and _pair_matches(key_pem, cert_pem):
        report(f"  · CA: reusing {files.resolve(certs)}/ca.crt")
    else:
        subject = str(node.management_of(plan.api_advertise_address.version) or node.management[0]).split("/")[0]
        report(f"  {'~' if dry_run else '✓'} CA: new key and certificate (CN {subject}) in {files.resolve(certs)}")
        changed = True
        if not dry_run:
            key_pem, cert_pem = make_ca(subject)
            # Only the work area itself is restricted; missing parents (/var/lib/...) get the usual 0755.
            files.makedirs(str(PurePosixPath(area).parent))
            files.makedirs(area, mode=0o750)
            files.makedirs(certs, mode=0o700)
            files.chmod(certs, 0o700)
            files.write_atomic(f"{certs}/ca.key", key_pem, mode=0o600)
            files.chmod(f"{certs}/ca.key", 0o600)
            files.write_atomic(f"{certs}/ca.crt", cert_pem, mode=0o644)
    token = config.general.token
    if token is None or not TOKEN_RE.match(token):
        token = new_token()
        changed = True
        report(f"  {'~' if dry_run else '✓'} bootstrap token: new")
    else:
        report("  · bootstrap token: keeping the one in the config")
    current = (config.general.token_cert_hash or "").removeprefix("sha256:")
    if not changed and cert_pem is not None and ca_cert_hash(cert_pem) == current.lower():
        report(f"  · {config_path}: token and token-cert-hash up to date")
        return False
    if dry_run:
        report(f"  ~ would write token and token-cert-hash into {config_path}")
        return True
    assert cert_pem is not None
    digest = ca_cert_hash(cert_pem)
    update_config_file(config_path, {"token": token, "token-cert-hash": digest})
    report(f"  ✓ wrote token and token-cert-hash into {config_path}; copy it to the other nodes")
    return True
