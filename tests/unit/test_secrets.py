"""Secrets: a secure `up` on the master needs the CA that `init` made (and that the minions' hash names), and
every file lazyjack writes a secret into is 0600, also one that was there with another mode; undo gives an
existing file its mode back.
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from stepkit import FakeNode, differences, make_node

from lazyjack.commands.init import ca_cert_hash, make_ca
from lazyjack.errors import PreflightError
from lazyjack.steps.journal import JOURNAL_PATH
from lazyjack.steps.kube import PKI_DIR

TOKEN = "abcdef.0123456789abcdef"


def _secure(fake: FakeNode, cert_hash: str) -> None:
    general = fake.config.general.model_copy(update={"insecure": False, "token": TOKEN, "token_cert_hash": cert_hash})
    fake.config = dataclasses.replace(fake.config, general=general)


def _mode(fake: FakeNode, path: str) -> int:
    return stat.S_IMODE((fake.root / path.lstrip("/")).stat().st_mode)


@pytest.fixture
def master(tmp_path: Path) -> FakeNode:
    return make_node(tmp_path, "ipv4.yaml", "master")


def _ca(fake: FakeNode) -> str:
    """A real CA in the work area, as init leaves it; its hash."""
    key, cert = make_ca("10.192.0.2")
    fake.write("/tmp/lazyjack/certs/ca.key", key)
    fake.write("/tmp/lazyjack/certs/ca.crt", cert)
    return ca_cert_hash(cert)


def test_secure_up_on_the_master_without_the_ca_is_refused_before_any_change(master: FakeNode) -> None:
    _secure(master, "0" * 64)
    master.run("prepare")
    before = master.snapshot()
    with pytest.raises(PreflightError) as caught:
        master.run("up")
    message = str(caught.value)
    assert "up stopped before changing anything" in message
    assert f"{master.root}/tmp/lazyjack/certs/ca.crt and ca.key are missing" in message
    assert "run `lazyjack init` on the master" in message
    assert differences(before, master.snapshot()) == []


def test_secure_up_with_a_ca_the_config_does_not_name_is_refused(master: FakeNode) -> None:
    _ca(master)
    _secure(master, "ab" * 32)
    master.run("prepare")
    before = master.snapshot()
    with pytest.raises(PreflightError, match=r"ca\.crt does not match general\.token-cert-hash \(its hash is [0-9a-f]{"
                                             r"64}\): the minions would not trust this master; run `lazyjack init`"):
        master.run("up")
    assert differences(before, master.snapshot()) == []


def test_secure_up_with_its_ca_copies_it_for_kubeadm(master: FakeNode) -> None:
    _secure(master, _ca(master))
    master.run("prepare")
    master.run("up")
    assert _mode(master, f"{PKI_DIR}/ca.key") == 0o600


def test_secrets_are_0600_even_where_a_file_was_and_undo_puts_its_mode_back(master: FakeNode) -> None:
    _secure(master, _ca(master))
    # Files there before lazyjack, readable by all: the kubeadm config and the CA key for kubeadm.
    master.write("/tmp/lazyjack/kubeadm.conf", "# mine\n")
    (master.root / "tmp/lazyjack/kubeadm.conf").chmod(0o644)
    master.write(f"{PKI_DIR}/ca.key", "old key\n")
    (master.root / PKI_DIR.lstrip("/") / "ca.key").chmod(0o644)
    arranged = master.snapshot()

    master.run("prepare")
    assert _mode(master, "/tmp/lazyjack/kubeadm.conf") == 0o600  # it holds the token now
    assert _mode(master, "/tmp/lazyjack/kubeadm.conf.bak") == 0o600  # so may the copy kept of it
    assert _mode(master, JOURNAL_PATH) == 0o600
    (master.root / JOURNAL_PATH.lstrip("/")).chmod(0o644)  # opened up by someone: the next write closes it
    master.run("up")
    assert _mode(master, f"{PKI_DIR}/ca.key") == 0o600
    assert _mode(master, JOURNAL_PATH) == 0o600

    master.run("down")
    assert master.read(f"{PKI_DIR}/ca.key") == "old key\n" and _mode(master, f"{PKI_DIR}/ca.key") == 0o644
    master.run("clean")
    after = master.snapshot()
    assert after["files"]["/tmp/lazyjack/kubeadm.conf"] == arranged["files"]["/tmp/lazyjack/kubeadm.conf"]


def test_a_secret_opened_up_by_someone_is_closed_again_by_the_next_run(master: FakeNode) -> None:
    master.run("prepare")
    master.output()
    (master.root / "tmp/lazyjack/kubeadm.conf").chmod(0o644)
    master.run("prepare")
    assert "✓ kubeadm config: mode 0600 for /tmp/lazyjack/kubeadm.conf (it is 0644): it holds a secret" in master.output()
    assert _mode(master, "/tmp/lazyjack/kubeadm.conf") == 0o600
    assert not (master.root / "tmp/lazyjack/kubeadm.conf.bak").exists()  # nothing to keep aside for a mode
    master.run("clean")
    assert not (master.root / "tmp/lazyjack").exists()
