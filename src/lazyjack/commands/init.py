"""`lazyjack init` on the master: the CA, the bootstrap token and the CA hash, written into the config file."""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
import string
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lazyjack.config.edit import SECRET_MODE, config_mode, restrict_config_mode, update_config_file
from lazyjack.config.model import Config
from lazyjack.config.plan import Plan
from lazyjack.config.rules import TOKEN_RE
from lazyjack.errors import PreflightError
from lazyjack.host.files import Files

if TYPE_CHECKING:
    from lazyjack.host import Host

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


def ca_problem(key_pem: bytes | None, cert_pem: bytes | None) -> str | None:
    """Why the CA files cannot be used as they are ("ca.key does not belong to ca.crt"), or None when they can.

    Both missing is no problem: there is no CA yet.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if key_pem is None and cert_pem is None:
        return None
    if key_pem is None or cert_pem is None:
        return f"{'ca.key' if key_pem is None else 'ca.crt'} is missing"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        return f"ca.crt cannot be read ({exc})"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # TypeError: encrypted, and no password to give.
        return f"ca.key cannot be read ({exc})"
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*fmt) != cert.public_key().public_bytes(*fmt):
        return "ca.key does not belong to ca.crt"
    return None


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


def run_init(host: Host, config: Config, plan: Plan, node_name: str, *, config_path: Path,
             dry_run: bool, report: Callable[[str], None], force: bool = False) -> bool:
    """Make (or reuse) the CA and token and write them into the config file; True if anything changed.

    Holds the node lock while acting, as the other commands do. A CA that is there but cannot be
    used (a file missing or unreadable, a key of another CA) is kept unless `force`: minions that
    joined with its hash would stop trusting the master. With `force` the old files are kept
    beside the new ones (`ca.key.<time>.bak`).
    """
    from lazyjack.commands.node import maybe_lock

    node = plan.nodes[node_name]
    if not node.is_master:
        raise PreflightError(f"init runs on the master ({plan.master.name}), not on {node_name}")
    if config.general.insecure:
        report("init is not needed in insecure mode (general.insecure: true); nothing changed")
        return False
    with maybe_lock(host, dry_run):
        return _init(host.files, config, plan, node_name, config_path=config_path, dry_run=dry_run, force=force,
                     report=report)


def _init(files: Files, config: Config, plan: Plan, node_name: str, *, config_path: Path, dry_run: bool, force: bool,
          report: Callable[[str], None]) -> bool:
    node = plan.nodes[node_name]
    mark = "~" if dry_run else "✓"
    area = config.work_area.rstrip("/")
    certs = f"{area}/certs"
    check_work_area(files, area)
    check_work_area(files, certs)
    key_pem, cert_pem = files.read_bytes(f"{certs}/ca.key"), files.read_bytes(f"{certs}/ca.crt")
    problem = ca_problem(key_pem, cert_pem)
    changed = False
    if problem is not None and not force:
        raise PreflightError(
            f"the CA in {files.resolve(certs)} cannot be used: {problem}. Minions that joined with its hash would "
            "no longer trust the master: put the right files back, or make a new CA with `lazyjack init --force` "
            "(the old files are kept as <name>.<time>.bak)"
        )
    if key_pem is not None and cert_pem is not None and problem is None:
        report(f"  · CA: reusing {files.resolve(certs)}/ca.crt")
    else:
        subject = str(node.management_of(plan.api_advertise_address.version) or node.management[0]).split("/")[0]
        changed = True
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        for name, data in (("ca.key", key_pem), ("ca.crt", cert_pem)):
            if data is not None:
                kept = f"{certs}/{name}.{stamp}.bak"
                report(f"  {mark} CA: kept {name} as {files.resolve(kept)} (--force)")
                if not dry_run and not files.backup(f"{certs}/{name}", suffix=f".{stamp}.bak"):
                    raise PreflightError(f"{files.resolve(kept)} exists already; try again in a second")
        report(f"  {mark} CA: new key and certificate (CN {subject}) in {files.resolve(certs)}")
        if not dry_run:
            key_pem, cert_pem = make_ca(subject)
            # Only the work area itself is restricted; missing parents (/var/lib/...) get the usual 0755.
            files.makedirs(area, mode=0o750)
            files.makedirs(certs, mode=0o700)
            files.chmod(certs, 0o700)
            # A race in a shared parent (/tmp) could have put someone else's directory there meanwhile.
            check_work_area(files, area)
            check_work_area(files, certs)
            files.write_secret(f"{certs}/ca.key", key_pem)
            files.write_atomic(f"{certs}/ca.crt", cert_pem, mode=0o644)
    token = config.general.token
    if token is None or not TOKEN_RE.match(token):
        token = new_token()
        changed = True
        report(f"  {mark} bootstrap token: new")
    else:
        report("  · bootstrap token: keeping the one in the config")
    current = (config.general.token_cert_hash or "").removeprefix("sha256:")
    if not changed and cert_pem is not None and ca_cert_hash(cert_pem) == current.lower():
        report(f"  · {config_path}: token and token-cert-hash up to date")
        _secret_mode(config_path, dry_run=dry_run, report=report)
        return False
    if dry_run:
        report(f"  ~ would write token and token-cert-hash into {config_path} (mode 0600: it holds the token)")
        return True
    assert cert_pem is not None
    digest = ca_cert_hash(cert_pem)
    was = update_config_file(config_path, {"token": token, "token-cert-hash": digest}, mode=SECRET_MODE)
    report(f"  ✓ wrote token and token-cert-hash into {config_path}; copy it to the other nodes")
    _said_mode(config_path, was, report=report)
    return True


def _secret_mode(config_path: Path, *, dry_run: bool, report: Callable[[str], None]) -> None:
    """The config holds the bootstrap token: 0600, also when someone opened it up since init wrote it."""
    mode = config_mode(config_path)
    if mode == SECRET_MODE:
        return
    if dry_run:
        report(f"  ~ would make {config_path} mode 0600 (was {mode:04o}): it holds the bootstrap token")
        return
    _said_mode(config_path, restrict_config_mode(config_path, SECRET_MODE), report=report)


def _said_mode(config_path: Path, was: int, *, report: Callable[[str], None]) -> None:
    if was != SECRET_MODE:
        report(f"  ✓ {config_path} holds the bootstrap token now: mode 0600 (was {was:04o}), as kubeadm keeps its "
               "own token files")
