"""`lazyjack init` through the CLI: CA, token and CA hash under --root, written back into the config file."""

from __future__ import annotations

import datetime
import difflib
import hashlib
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ruamel.yaml import YAML

from lazyjack.cli import EXAMPLES_DIR, main
from lazyjack.commands.init import ca_cert_hash, make_ca, new_token

TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
OTHER_UID, OTHER_GID = 1234, 2345
#: Host paths of the files init makes (the example's general.work-area is /tmp/lazyjack).
AREA = Path("tmp/lazyjack")
CERTS = AREA / "certs"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@dataclass
class Sandbox:
    """A master's root directory and a secure-mode copy of the IPv6 example."""

    root: Path
    config: Path

    @property
    def certs(self) -> Path:
        return self.root / CERTS

    def general(self) -> dict[str, Any]:
        return dict(YAML(typ="safe").load(self.config.read_text())["general"] or {})


def _example(name: str = "ipv6.yaml") -> str:
    text = (EXAMPLES_DIR / name).read_text()
    secure = re.sub(r"insecure: true\b", "insecure: false", text)
    assert secure != text
    return secure


def _sandbox(tmp_path: Path, text: str) -> Sandbox:
    root = tmp_path / "master"
    (root / "var/lib").mkdir(parents=True)  # as on every host
    config = tmp_path / "cluster.yaml"
    config.write_text(text)
    return Sandbox(root, config)


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return _sandbox(tmp_path, _example())


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _init(box: Sandbox, capsys: pytest.CaptureFixture[str], *extra: str, host: str = "my-master") -> tuple[int, str, str]:
    return _run(["init", "--config", str(box.config), "--host", host, "--root", str(box.root), *extra], capsys)


def _snapshot(*paths: Path) -> dict[str, tuple[int, int, int, int, bytes | None]]:
    """Every file and directory under the paths: mode, owner, mtime and contents."""
    seen: dict[str, tuple[int, int, int, int, bytes | None]] = {}

    def add(path: Path) -> None:
        st = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        # A directory's mtime changes with its entries, which are compared themselves (the node lock
        # comes and goes in /var/lib).
        mtime = 0 if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns
        seen[str(path)] = (st.st_mode, st.st_uid, st.st_gid, mtime, data)

    for top in paths:
        add(top)
        if top.is_dir():
            for dirpath, dirnames, filenames in os.walk(top):
                for name in dirnames + filenames:
                    add(Path(dirpath) / name)
    return seen


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _openssl_hash(cert_pem: bytes) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, computed without lazyjack (openssl when present)."""
    if shutil.which("openssl") is None:
        cert = x509.load_pem_x509_certificate(cert_pem)
        spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).hexdigest()
    pem_key = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout"], input=cert_pem, capture_output=True, check=True, timeout=30
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pem_key, capture_output=True, check=True, timeout=30
    ).stdout
    return hashlib.sha256(der).hexdigest()


def _assert_untouched_error(code: int, err: str, expected_code: int) -> None:
    assert code == expected_code
    assert "Traceback" not in err and "internal error" not in err
    assert err.startswith("lazyjack: error: ")


# --- a first run makes the CA, the token and the hash ------------------------------------------


def test_init_makes_a_ca_key_and_certificate_with_safe_modes(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _init(box, capsys)

    assert code == 0, err
    assert "CA: new key and certificate (CN fd00:20::2)" in out
    assert _mode(box.root / AREA) == 0o750
    assert _mode(box.certs) == 0o700
    assert _mode(box.certs / "ca.key") == 0o600
    # Parents that init had to create are ordinary directories, not restricted like the work area.
    assert _mode(box.root / "tmp") == 0o755
    cert = x509.load_pem_x509_certificate((box.certs / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((box.certs / "ca.key").read_bytes(), password=None)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is True and constraints.critical
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "fd00:20::2"
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)  # self-signed: raises if the signature is not its own
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def test_init_writes_a_kubeadm_token_and_the_spki_hash_of_the_ca(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _init(box, capsys)

    assert code == 0, err
    general = box.general()
    assert TOKEN_RE.match(general["token"])
    assert HASH_RE.match(general["token-cert-hash"])
    assert general["token-cert-hash"] == _openssl_hash((box.certs / "ca.crt").read_bytes())
    assert f"wrote token and token-cert-hash into {box.config}" in out


def test_config_keeps_comments_key_order_and_indentation(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    before = box.config.read_text().splitlines(keepends=True)

    assert _init(box, capsys)[0] == 0

    after = box.config.read_text().splitlines(keepends=True)
    changes = [line for line in difflib.ndiff(before, after) if line[:2] in ("- ", "+ ")]
    # Exactly two lines added, nothing removed or reformatted: every comment, key and indent stays.
    assert [c[:2] for c in changes] == ["+ ", "+ "], changes
    assert re.fullmatch(r"\+     token: [a-z0-9]{6}\.[a-z0-9]{16}\n", changes[0])
    assert re.fullmatch(r"\+     token-cert-hash: [0-9a-f]{64}\n", changes[1])
    general_keys = list(box.general())
    assert general_keys[-2:] == ["token", "token-cert-hash"]
    assert general_keys[0] == "plugin"


@needs_root
def test_config_keeps_owner_and_mode_and_leaves_no_temp_file(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chown(box.config, OTHER_UID, OTHER_GID)
    os.chmod(box.config, 0o640)
    inode = box.config.stat().st_ino

    code, out, _ = _init(box, capsys)

    assert code == 0
    st = box.config.stat()
    # The owner stays; the mode is 0600 now that the file holds the bootstrap token, and init says so.
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (OTHER_UID, OTHER_GID, 0o600)
    assert f"{box.config} holds the bootstrap token now: mode 0600 (was 0640)" in out
    assert st.st_ino != inode  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in box.config.parent.iterdir()) == ["cluster.yaml", "master"]


def test_the_config_holding_the_token_is_0600(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    box.config.chmod(0o644)
    code, out, _ = _init(box, capsys)
    assert code == 0 and _mode(box.config) == 0o600
    assert "mode 0600 (was 0644)" in out
    box.config.chmod(0o640)  # someone opened it up again: a run that changes nothing closes it
    code, out, _ = _init(box, capsys)
    assert code == 0 and _mode(box.config) == 0o600 and "mode 0600 (was 0640)" in out


def test_config_reached_through_a_symlink_stays_a_symlink(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    link = box.config.parent / "link.yaml"
    link.symlink_to(box.config.name)

    code, _, err = _run(["init", "--config", str(link), "--host", "my-master", "--root", str(box.root)], capsys)

    assert code == 0, err
    assert link.is_symlink()
    assert TOKEN_RE.match(box.general()["token"])


# --- re-runs, dry runs and insecure mode change nothing ----------------------------------------


def test_second_run_reuses_the_ca_and_token_and_changes_nothing(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _init(box, capsys)[0] == 0
    before = _snapshot(box.root, box.config)

    code, out, err = _init(box, capsys)

    assert code == 0, err
    assert _snapshot(box.root, box.config) == before
    assert "CA: reusing" in out
    assert "bootstrap token: keeping the one in the config" in out
    assert "token and token-cert-hash up to date" in out


def test_dry_run_changes_nothing_and_says_what_it_would_do(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(box.root, box.config)

    code, out, err = _init(box, capsys, "--dry-run")

    assert code == 0, err
    assert _snapshot(box.root, box.config) == before
    assert "~ CA: new key and certificate" in out
    assert "would write token and token-cert-hash" in out


def test_dry_run_after_init_reports_nothing_to_do(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert _init(box, capsys)[0] == 0
    before = _snapshot(box.root, box.config)

    code, out, _ = _init(box, capsys, "--dry-run")

    assert code == 0
    assert _snapshot(box.root, box.config) == before
    assert "up to date" in out and "would" not in out


def test_insecure_mode_says_init_is_not_needed_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = _sandbox(tmp_path, (EXAMPLES_DIR / "ipv6.yaml").read_text())
    before = _snapshot(box.root, box.config)

    code, out, err = _init(box, capsys)

    assert code == 0, err
    assert "not needed in insecure mode" in out
    assert _snapshot(box.root, box.config) == before


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        pytest.param(lambda certs: (certs / "ca.key").write_bytes(make_ca("someone-else")[0]),
                     "ca.key does not belong to ca.crt", id="key-of-another-ca"),
        pytest.param(lambda certs: (certs / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\ntruncated\n"),
                     "ca.crt cannot be read", id="certificate-damaged"),
        pytest.param(lambda certs: (certs / "ca.key").write_text("not a key\n"), "ca.key cannot be read",
                     id="key-damaged"),
        pytest.param(lambda certs: (certs / "ca.crt").unlink(), "ca.crt is missing", id="certificate-missing"),
    ],
)
def test_a_ca_that_cannot_be_used_is_kept_unless_forced_then_backed_up(
    box: Sandbox, capsys: pytest.CaptureFixture[str], damage: Any, why: str
) -> None:
    assert _init(box, capsys)[0] == 0
    token = box.general()["token"]
    damage(box.certs)
    before = _snapshot(box.root, box.config)

    code, out, err = _init(box, capsys)

    _assert_untouched_error(code, err, 1)
    assert why in err and "lazyjack init --force" in err and str(box.certs) in err, err
    assert _snapshot(box.root, box.config) == before

    kept = {p.name: p.read_bytes() for p in box.certs.iterdir()}
    code, out, err = _init(box, capsys, "--force")

    assert code == 0, err
    assert "CA: new key and certificate" in out
    backups = {p.name.rsplit(".", 2)[0]: p for p in box.certs.iterdir() if p.name.endswith(".bak")}
    assert sorted(backups) == sorted(kept)
    for name, path in backups.items():
        assert re.fullmatch(rf"{re.escape(name)}\.\d{{8}}T\d{{6}}\.bak", path.name)
        assert path.read_bytes() == kept[name]
        assert f"CA: kept {name} as {path} (--force)" in out
    assert all(_mode(p) == 0o600 for p in backups.values() if p.name.startswith("ca.key"))
    cert_pem = (box.certs / "ca.crt").read_bytes()
    assert box.general()["token"] == token
    assert box.general()["token-cert-hash"] == _openssl_hash(cert_pem)
    assert _mode(box.certs / "ca.key") == 0o600


def test_init_takes_the_node_lock(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    from lazyjack.commands.node import node_lock
    from lazyjack.host import Host

    host = Host.real(box.root)
    try:
        with node_lock(host):
            before = _snapshot(box.root / "tmp", box.config) if (box.root / "tmp").exists() else {}
            code, _, err = _init(box, capsys)
            assert code == 1 and f"another lazyjack (pid {os.getpid()}) is acting on this node" in err
            assert not (box.root / AREA).exists() and before == {}
    finally:
        host.close()
    assert _init(box, capsys)[0] == 0
    assert not (box.root / "var/lib/lazyjack").exists()  # the lock is gone with its directory


# --- config shapes: placeholders, an existing token, no general section ------------------------


def test_placeholders_are_replaced_in_place_keeping_their_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _example().replace(
        "    mode: ipv6\n",
        "    mode: ipv6\n    token: <provide-token>          # init fills this\n"
        "    token-cert-hash: <provide-cert-hash>  # and this\n",
    )
    box = _sandbox(tmp_path, text)

    code, _, err = _init(box, capsys)

    assert code == 0, err
    lines = box.config.read_text().splitlines()
    token_line = next(i for i, line in enumerate(lines) if line.startswith("    token:"))
    assert lines[token_line - 1] == "    mode: ipv6"
    assert re.fullmatch(r"    token: [a-z0-9]{6}\.[a-z0-9]{16} +# init fills this", lines[token_line])
    assert re.fullmatch(r"    token-cert-hash: [0-9a-f]{64} +# and this", lines[token_line + 1])
    assert sum(line.lstrip().startswith("token") for line in lines) == 2
    assert _run(["validate", "--config", str(box.config)], capsys)[0] == 0


def test_a_valid_token_in_the_config_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = "abcdef.0123456789abcdef"
    box = _sandbox(tmp_path, _example().replace("    mode: ipv6\n", f"    mode: ipv6\n    token: {mine}\n"))

    code, out, _ = _init(box, capsys)

    assert code == 0
    assert "keeping the one in the config" in out
    assert box.general()["token"] == mine
    assert HASH_RE.match(box.general()["token-cert-hash"])


@pytest.mark.parametrize("replacement", ["", "general:\n", "general:   # filled by init\n"], ids=["none", "empty", "comment"])
def test_a_config_without_general_settings_gets_a_general_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replacement: str
) -> None:
    # Without general, insecure defaults to false and the work area to /tmp/lazyjack.
    text = re.sub(r"general:\n(    .*\n)+", replacement, _example())
    assert "insecure" not in text
    box = _sandbox(tmp_path, text)

    code, _, err = _init(box, capsys)

    assert code == 0, err
    general = box.general()
    assert set(general) == {"token", "token-cert-hash"}
    assert general["token-cert-hash"] == _openssl_hash((box.certs / "ca.crt").read_bytes())
    after = box.config.read_text()
    assert after.startswith("# lazyjack example: an IPv6-only cluster of two nodes.\n")
    assert after.count("general:") == 1
    assert _run(["validate", "--config", str(box.config)], capsys)[0] == 0


@pytest.mark.parametrize(
    ("example", "master", "node_id", "common_name"),
    [
        ("ipv6.yaml", "my-master", 10, "fd00:20::a"),
        ("ipv6.yaml", "my-master", 171, "fd00:20::ab"),
        ("ipv4.yaml", "master", 12, "10.192.0.12"),
    ],
)
def test_ca_common_name_is_the_masters_management_ip(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    example: str,
    master: str,
    node_id: int,
    common_name: str,
) -> None:
    text = re.sub(rf"(    {master}:\n(?:        .*\n)*?        id: )2\n", rf"\g<1>{node_id}\n", _example(example))
    box = _sandbox(tmp_path, text)

    code, _, err = _init(box, capsys, host=master)

    assert code == 0, err
    cert = x509.load_pem_x509_certificate((box.certs / "ca.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name


# --- refusals: exit 1 while acting, exit 2 for the config, never a traceback ------------------


def test_init_on_a_minion_is_an_error_naming_the_master(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(box.root, box.config)

    code, out, err = _init(box, capsys, host="a-minion")

    _assert_untouched_error(code, err, 1)
    assert "init runs on the master (my-master), not on a-minion" in err
    assert out == ""
    assert _snapshot(box.root, box.config) == before


@pytest.mark.parametrize("link", [AREA, CERTS], ids=["work-area", "certs"])
def test_a_symlinked_work_area_is_refused(box: Sandbox, capsys: pytest.CaptureFixture[str], link: Path) -> None:
    elsewhere = box.root / "elsewhere"
    elsewhere.mkdir()
    (box.root / link).parent.mkdir(parents=True, exist_ok=True)
    (box.root / link).symlink_to(elsewhere)
    before = _snapshot(box.root, box.config)

    code, _, err = _init(box, capsys)

    _assert_untouched_error(code, err, 1)
    assert "is a symlink" in err
    assert _snapshot(box.root, box.config) == before


@needs_root
def test_a_work_area_owned_by_another_user_is_refused(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    (box.root / AREA).mkdir(parents=True)
    os.chown(box.root / AREA, OTHER_UID, OTHER_GID)
    before = _snapshot(box.root, box.config)

    code, _, err = _init(box, capsys)

    _assert_untouched_error(code, err, 1)
    assert f"owned by uid {OTHER_UID}" in err
    assert _snapshot(box.root, box.config) == before


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("    mode: ipv6\n", "    mode: ipv6\n    token: abc.def\n", "general.token"),
        ("    mode: ipv6\n", "    mode: ipv6\n    colour: blue\n", "general.colour"),
    ],
    ids=["bad-token", "unknown-key"],
)
def test_config_errors_exit_2_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, fragment: str
) -> None:
    box = _sandbox(tmp_path, _example().replace(old, new))
    before = _snapshot(box.root, box.config)

    code, _, err = _init(box, capsys)

    _assert_untouched_error(code, err, 2)
    assert fragment in err
    assert _snapshot(box.root, box.config) == before


def test_an_unknown_host_is_a_config_error(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _init(box, capsys, host="my-mastr")

    _assert_untouched_error(code, err, 2)
    assert "did you mean 'my-master'" in err


# --- the updated file on a minion ---------------------------------------------------------------


def _kubeadm_documents(out: str) -> list[Any]:
    """The kubeadm config that `prepare --dry-run` shows as a diff of a new file."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("+++ ") and "kubeadm.conf" in line)
    body: list[str] = []
    for line in lines[start + 2 :]:  # after the +++ and @@ lines
        stripped = line.lstrip()
        if not stripped.startswith("+"):
            break
        body.append(stripped[1:])
    return [doc for doc in YAML(typ="safe").load_all("\n".join(body)) if doc]


def test_a_minion_accepts_the_updated_file_and_joins_with_the_ca_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `lo` exists on every host, so the minion's pre-flight passes without privileges.
    text = re.sub(r"(    a-minion:\n        interface: )eth1", r"\g<1>lo", _example())
    box = _sandbox(tmp_path, text)
    assert _init(box, capsys)[0] == 0
    digest = box.general()["token-cert-hash"]
    token = box.general()["token"]
    minion_root = tmp_path / "minion"
    minion_root.mkdir()
    minion_config = minion_root / "config.yaml"
    shutil.copyfile(box.config, minion_config)

    assert _run(["validate", "--config", str(minion_config), "--host", "a-minion"], capsys)[0] == 0
    code, out, err = _run(
        ["prepare", "--dry-run", "--config", str(minion_config), "--host", "a-minion", "--root", str(minion_root)],
        capsys,
    )

    assert code == 0, err
    join = next(doc for doc in _kubeadm_documents(out) if doc["kind"] == "JoinConfiguration")
    assert join["discovery"]["bootstrapToken"]["caCertHashes"] == [f"sha256:{digest}"]
    assert join["discovery"]["bootstrapToken"]["token"] == token
    assert sorted(p.name for p in minion_root.iterdir()) == ["config.yaml"]


# --- the pieces --------------------------------------------------------------------------------


def test_new_tokens_have_kubeadms_format_and_differ() -> None:
    tokens = {new_token() for _ in range(200)}

    assert len(tokens) == 200
    assert all(TOKEN_RE.match(t) for t in tokens)


@pytest.fixture
def ec_cert_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_ca_hash_works_for_any_key_type(ec_cert_pem: bytes) -> None:
    _, rsa_cert = make_ca("fd00:20::2")

    assert ca_cert_hash(rsa_cert) == _openssl_hash(rsa_cert)
    assert ca_cert_hash(ec_cert_pem) == _openssl_hash(ec_cert_pem)
