"""`lazyjack cluster` over real SSH: an sshd per node, each node with its own files (tests/e2e/sshcluster.py).

The tests share one 3-node cluster and run in this file's order, each leaving the cluster in
the state the next one expects (said in its docstring): making the nodes costs more than the
tests themselves. Every node's state is compared as a snapshot where a test promises that
nothing changed.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshcluster import TEST_DIR, SshCluster, make_ssh_cluster, wrapper_text

from lazyjack import __version__
from lazyjack.lab import sshd

NAMES = ["master", "minion-1", "minion-2"]
# Secure (not insecure) and without a token: cluster up runs init on the master.
CONFIG = """\
# the cluster of the SSH tests; init writes the token below
general:
    plugin: bridge
    mode: ipv4
    kubernetes-version: v1.31.0
    insecure: false
topology:
    master:
        interface: eth1
        opmodes: master
        id: 2
    minion-1:
        interface: eth1
        opmodes: minion
        id: 3
    minion-2:
        interface: eth1
        opmodes: minion
        id: 4
mgmt_net:
    cidr: 10.192.0.0/16
pod_net:
    cidr: 10.244.0.0/16
service_net:
    cidr: 10.96.0.0/12
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[SshCluster]:
    if not Path(sshd.SSHD).exists():
        pytest.fail("sshd is missing: apt-get install openssh-server (scripts/bootstrap)", pytrace=False)
    made = make_ssh_cluster(CONFIG, NAMES)
    made.initial = made.snapshots()  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        made.destroy()


def said(stdout: str, command: str, node: str) -> str:
    """The live line of `command` on `node`: ` ✓ up on minion-1 (3.1s): nothing to change`."""
    lines = [line for line in stdout.splitlines() if line.startswith((f" ✓ {command} on {node} ",
                                                                        f" ✗ {command} on {node} "))]
    assert len(lines) == 1, stdout
    return lines[0]


def out(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_dry_run_before_init_changes_nothing(cluster: SshCluster) -> None:
    """Fresh nodes: the dry run shows init's plan on the master and says why it stops there."""
    before, config = cluster.snapshots(), cluster.config.read_bytes()
    result = cluster.cluster("up", "--dry-run")
    assert result.returncode == 0, out(result)
    assert "init on master" in result.stdout and "need the token and CA hash" in result.stdout
    assert cluster.snapshots() == before
    assert cluster.config.read_bytes() == config


def test_unreachable_node_stops_before_any_change(cluster: SshCluster) -> None:
    """minion-2's sshd stopped: exit 1 naming it, nothing changed on any node; its sshd is started again."""
    node = cluster.nodes["minion-2"]
    before, config = cluster.snapshots(), cluster.config.read_bytes()
    sshd.stop_sshd(node)
    try:
        result = cluster.cluster("up")
    finally:
        sshd.start_sshd(node, authorized_keys=Path(f"{cluster.key}.pub").read_text())
    assert result.returncode == 1, out(result)
    assert "pre-flight failed on minion-2; nothing was changed on any node" in result.stderr
    assert "cannot reach root@fe80::2%" in result.stdout
    table = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[-8:]
             if line.strip().split()[:1] in (["master"], ["minion-1"], ["minion-2"])}
    assert table == {"master": "not", "minion-1": "not", "minion-2": "failed"}, result.stdout
    assert cluster.snapshots() == before
    assert cluster.config.read_bytes() == config


def test_unknown_and_changed_host_keys_are_refused(cluster: SshCluster, tmp_path: Path) -> None:
    """No pinned key for minion-1, then another key: both stop the run naming node and fix."""
    before = cluster.snapshots()
    lines = cluster.known_hosts.read_text().splitlines(keepends=True)
    others = [line for line in lines if not line.startswith("minion-1 ")]
    unknown = tmp_path / "known_hosts.unknown"
    unknown.write_text("".join(others))
    config = cluster.write_ssh_config(tmp_path / "ssh_config.unknown", known_hosts=unknown)
    result = cluster.cluster("up", ssh_config=config)
    assert result.returncode == 1, out(result)
    assert "pre-flight failed on minion-1" in result.stderr
    assert "host key of root@fe80::2%" in result.stdout and "is unknown (ED25519 SHA256:" in result.stdout
    assert "--accept-new-host-keys" in result.stdout

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = (tmp_path / "other_key.pub").read_text().split()[:2]
    changed = tmp_path / "known_hosts.changed"
    changed.write_text("".join(others) + f"minion-1 {kind} {key}\n")
    config = cluster.write_ssh_config(tmp_path / "ssh_config.changed", known_hosts=changed)
    result = cluster.cluster("up", "--accept-new-host-keys", ssh_config=config)
    assert result.returncode == 1, out(result)
    assert "has CHANGED" in result.stdout and "ssh-keygen -R 'minion-1' -f" in result.stdout
    assert cluster.snapshots() == before

    # accept-new: the unknown key is added to the file, and the (read-only) status goes through.
    config = cluster.write_ssh_config(tmp_path / "ssh_config.unknown", known_hosts=unknown)
    result = cluster.cluster("status", "--accept-new-host-keys", ssh_config=config)
    assert result.returncode == 0, out(result)
    assert any(line.startswith("minion-1 ") or "minion-1" in line for line in unknown.read_text().splitlines())


def test_other_lazyjack_version_is_refused(cluster: SshCluster, tmp_path: Path) -> None:
    """minion-1 runs a real copy of lazyjack with another version: refused before any change."""
    other = Path(str(cluster.directory)) / "other-version"
    shutil.copytree(Path(sys.modules["lazyjack"].__file__).parent, other / "lazyjack",  # type: ignore[arg-type]
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "lazyjack" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{__version__}"', '__version__ = "1.9.9"'))
    before = cluster.snapshots()
    cluster.write_in_node("minion-1", f"{TEST_DIR}/lazyjack",
                          wrapper_text(what="lazyjack 1.9.9", pythonpath=other).encode(), 0o755)
    try:
        result = cluster.cluster("up")
    finally:
        cluster.write_in_node("minion-1", f"{TEST_DIR}/lazyjack", wrapper_text(what="lazyjack").encode(), 0o755)
    assert result.returncode == 1, out(result)
    assert f"runs lazyjack 1.9.9 ({TEST_DIR}/lazyjack), this is lazyjack {__version__}" in result.stdout
    assert "pre-flight failed on minion-1" in result.stderr
    assert cluster.snapshots() == before


def _joins(cluster: SshCluster, node: str) -> list[dict[str, object]]:
    return [c for c in cluster.calls(node) if c["program"] == "kubeadm" and c["argv"][0] == "join"]


def test_up_converges_joins_overlap_and_rerun_changes_nothing(cluster: SshCluster) -> None:
    """Fresh nodes -> up: init's token in the local config (0600), the same config on every node,
    the minions' joins at the same time; a second run changes nothing anywhere."""
    for node in ("minion-1", "minion-2"):
        cluster.standin_env(node, {"STANDIN_KUBEADM_SLEEP": "3"})
    try:
        result = cluster.cluster("up")
    finally:
        for node in ("minion-1", "minion-2"):
            cluster.standin_env(node, {})
    assert result.returncode == 0, out(result)
    assert "init on master" in result.stdout
    local = cluster.config.read_bytes()
    assert b"token: " in local and b"token-cert-hash: " in local
    assert local.startswith(b"# the cluster of the SSH tests")  # comments kept
    assert cluster.config.stat().st_mode & 0o777 == 0o600
    for node in cluster.nodes.values():
        pushed = node.etc / "lazyjack" / "config.yaml"
        assert pushed.read_bytes() == local
        assert pushed.stat().st_mode & 0o777 == 0o600 and pushed.stat().st_uid == 0
    (one,), (two,) = _joins(cluster, "minion-1"), _joins(cluster, "minion-2")
    assert max(one["started"], two["started"]) < min(one["ended"], two["ended"]), (one, two)  # type: ignore[operator]
    inits = [c for c in cluster.calls("master") if c["program"] == "kubeadm" and c["argv"][0] == "init"]
    assert len(inits) == 1 and inits[0]["ended"] < min(one["started"], two["started"])  # type: ignore[operator]

    again = cluster.cluster("up")
    assert again.returncode == 0, out(again)
    assert "got a new copy: none" in again.stdout
    for node in NAMES:
        for command in ("prepare", "up"):
            assert said(again.stdout, command, node).endswith("s): nothing to change"), again.stdout


def test_status_and_json(cluster: SshCluster) -> None:
    """Up: status says so per node, as a table and as JSON."""
    result = cluster.cluster("status")
    assert result.returncode == 0, out(result)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    for node in NAMES:
        assert rows[node][1:5] == ["yes", __version__, "up", "same"], result.stdout
    data = json.loads(cluster.cluster("status", "--output", "json").stdout)
    assert {n: (v["reachable"], v["version"], v["applied"]) for n, v in data["nodes"].items()} == {
        n: (True, __version__, "up") for n in NAMES}


def test_dry_runs_when_up_with_a_changed_config_change_nothing(cluster: SshCluster) -> None:
    """Up, and the local config changed since (the pod network's MTU): the dry runs of prepare, up, down and
    clean show every node's plan and change nothing anywhere, the copies of the config on the nodes included."""
    before, original = cluster.snapshots(), cluster.config.read_bytes()
    pushed = {name: (node.etc / "lazyjack" / "config.yaml").read_bytes() for name, node in cluster.nodes.items()}
    old = b"pod_net:\n    cidr: 10.244.0.0/16\n"
    assert old in original
    cluster.config.write_bytes(original.replace(old, old + b"    mtu: 1400\n"))
    try:
        for action in ("prepare", "up", "down", "clean"):
            logs = cluster.directory / "logs" / f"dry-{action}"
            result = cluster.cluster(action, "--dry-run", "--log-dir", str(logs))
            assert result.returncode == 0, out(result)
            assert "(dry run: nothing changes on any node)" in result.stdout, out(result)
            if action == "prepare":
                for name in NAMES:  # each node planned with the config that would be pushed: the new MTU
                    plan = (logs / f"{name}.log").read_text()
                    assert "~ " in plan and "1400" in plan, plan
            assert cluster.snapshots() == before, action
        for name, node in cluster.nodes.items():
            assert (node.etc / "lazyjack" / "config.yaml").read_bytes() == pushed[name]
    finally:
        cluster.config.write_bytes(original)


def test_failed_join_table_and_rerun(cluster: SshCluster) -> None:
    """Down, then up with minion-2's join failing: exit 1, the table, minion-2 rolled back; a rerun converges."""
    down = cluster.cluster("down")
    assert down.returncode == 0, out(down)
    cluster.standin_env("minion-2", {"STANDIN_FAIL": "join"})
    try:
        result = cluster.cluster("up", "--output", "json")
    finally:
        cluster.standin_env("minion-2", {})
    assert result.returncode == 1, out(result)
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["stopped_at"] == "up (minions)"
    nodes = data["nodes"]
    assert (nodes["master"]["result"], nodes["minion-1"]["result"], nodes["minion-2"]["result"]) == (
        "done", "done", "failed")
    assert nodes["minion-2"]["error"] == "up failed (exit 1)"
    assert any("join failed as the test asked" in line for line in nodes["minion-2"]["tail"])
    status = json.loads(cluster.cluster("status", "--output", "json").stdout)
    assert {n: v["applied"] for n, v in status["nodes"].items()} == {
        "master": "up", "minion-1": "up", "minion-2": "prepared"}
    rerun = cluster.cluster("up")
    assert rerun.returncode == 0, out(rerun)
    assert said(rerun.stdout, "up", "minion-1").endswith(": nothing to change")
    assert ": changed " in said(rerun.stdout, "up", "minion-2")


def test_sigterm_stops_the_remote_commands(cluster: SshCluster) -> None:
    """Up: down, then an up held in both minions' kubeadm join gets SIGTERM; both roll back, the table shows it.

    Both joins are held, so neither can finish between the interrupt and the rollback.
    """
    assert cluster.cluster("down").returncode == 0
    minions = ("minion-1", "minion-2")
    ready = {m: cluster.nodes[m].tmp / "kubeadm-hold.ready" for m in minions}
    for minion in minions:
        cluster.standin_env(minion, {"STANDIN_KUBEADM_HOLD": "/tmp/kubeadm-hold"})
    argv = [sys.executable, "-m", "lazyjack", "cluster", "up", "--config", str(cluster.config), "--ssh-config",
            str(cluster.ssh_config), "--remote-lazyjack", cluster.lazyjack,
            "--log-dir", str(cluster.directory / "logs" / "sigterm")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready.values()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(r.exists() for r in ready.values()), "the minions' kubeadm joins never started"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for minion in minions:
            cluster.standin_env(minion, {})
            ready[minion].unlink(missing_ok=True)
    assert proc.returncode == 128 + signal.SIGTERM, (stdout, stderr)
    assert "terminated (SIGTERM)" in stderr
    rows = {w[0]: w[1] for w in (line.split() for line in stdout.splitlines()) if len(w) > 1 and w[0] in NAMES}
    assert rows == {"master": "done", "minion-1": "failed", "minion-2": "failed"}, stdout
    assert stdout.count("stopped: the cluster run was interrupted") == 2, stdout
    # Each minion's lazyjack got the Ctrl-C through its terminal, rolled its up back, and said so.
    for minion in minions:
        log = (cluster.directory / "logs" / "sigterm" / f"{minion}.log").read_text()
        assert "rolled back" in log, log[-3000:]
    status = json.loads(cluster.cluster("status", "--output", "json").stdout)
    assert {m: status["nodes"][m]["applied"] for m in minions} == {m: "prepared" for m in minions}, status
    assert cluster.cluster("up").returncode == 0


def test_non_root_ssh_user_runs_lazyjack_with_sudo(cluster: SshCluster, tmp_path: Path) -> None:
    """A user `lab` on every node (in the node's own /etc) with sudo: status and down work as that user."""
    kept: dict[str, tuple[str, str]] = {}
    for name in NAMES:
        pid = sshd.running_pid(cluster.nodes[name])
        passwd = Path(f"/proc/{pid}/root/etc/passwd").read_text()
        shadow = Path(f"/proc/{pid}/root/etc/shadow").read_text()
        kept[name] = passwd, shadow
        cluster.write_in_node(name, "/etc/passwd", (passwd + "lab:x:4242:4242::/tmp:/bin/sh\n").encode())
        # '*': no password, yet not locked (sudo's PAM account check passes, sshd takes the key).
        cluster.write_in_node(name, "/etc/shadow", (shadow + "lab:*:19000:0:99999:7:::\n").encode(), 0o640)
        cluster.write_in_node(name, "/etc/sudoers.d/lazyjack-lab", b"lab ALL=(root) NOPASSWD: ALL\n", 0o440)
    original = cluster.config.read_text()
    cluster.config.write_text(original.replace("general:\n", "general:\n    ssh-user: lab\n", 1))
    config = cluster.write_ssh_config(tmp_path / "ssh_config.lab", known_hosts=cluster.known_hosts, user="lab")
    try:
        result = cluster.cluster("status", ssh_config=config)
        assert result.returncode == 0, out(result)
        down = cluster.cluster("down", ssh_config=config)
        assert down.returncode == 0, out(down)
        assert "got a new copy: master, minion-1, minion-2" in down.stdout  # the ssh-user line changed the bytes
        status = json.loads(cluster.cluster("status", "--output", "json", ssh_config=config).stdout)
        assert "up" not in {v["applied"] for v in status["nodes"].values()}
        sessions = (cluster.nodes["master"].sshd_dir / "sshd.log").read_text()
        assert "Accepted publickey for lab" in sessions
    finally:
        cluster.config.write_text(original)
        for name, (passwd, shadow) in kept.items():
            cluster.write_in_node(name, "/etc/passwd", passwd.encode())
            cluster.write_in_node(name, "/etc/shadow", shadow.encode(), 0o640)
            cluster.remove_in_node(name, "/etc/sudoers.d/lazyjack-lab")


def test_clean_brings_every_node_back(cluster: SshCluster) -> None:
    """Whatever the state: clean leaves every node as it was made, but for the pushed config and
    the master's CA (init's, kept for the next init, as on a real master)."""
    result = cluster.cluster("clean")
    assert result.returncode == 0, out(result)
    after = cluster.snapshots()
    ca = sorted(k for k in after["master"]["files"] if k.startswith("tmp/lazyjack"))
    kept = ("etc/lazyjack", "tmp/lazyjack")
    for name, snap in after.items():
        assert not any(k.startswith("tmp/lazyjack") for k in snap["files"]) or name == "master"
        snap["files"] = {k: v for k, v in snap["files"].items() if not k.startswith(kept)}
        initial = cluster.initial[name]  # type: ignore[attr-defined]
        initial["files"] = {k: v for k, v in initial["files"].items() if not k.startswith(kept)}
        assert snap == initial, name
    assert ca == [
        "tmp/lazyjack", "tmp/lazyjack/certs", "tmp/lazyjack/certs/ca.crt", "tmp/lazyjack/certs/ca.key"]
    again = cluster.cluster("clean")
    assert again.returncode == 0, out(again)
    for node in NAMES:
        assert said(again.stdout, "clean", node).endswith(": nothing to change"), again.stdout
