"""A test pod made the way a container runtime makes one: the node's CNI conflist, run plugin by plugin.

Each plugin of the list gets, on stdin, its own configuration with the list's `cniVersion` and
`name` added (and `prevResult` from the one before), and CNI_* variables in its environment
(CNI spec, "Execution of network configurations"). It runs in the node's namespace via nsenter.
host-local keeps its leases in the lab's directory (`dataDir`), never in /var/lib/cni.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from lazyjack.errors import CommandFailed
from lazyjack.host.netns import NETNS_DIR
from lazyjack.host.process import RunnerAPI
from lazyjack.lab import LabError, read_json
from lazyjack.lab.topology import nsenter
from lazyjack.render.cni import CONFLIST_NAME

#: Upstream installs the plugins in /opt/cni/bin, Debian in /usr/lib/cni.
PLUGIN_DIRS = (Path("/opt/cni/bin"), Path("/usr/lib/cni"))
CONFLIST = f"/etc/cni/net.d/{CONFLIST_NAME}"
IFNAME = "eth0"
TIMEOUT = 60.0

Result = dict[str, Any]


def plugin_dirs() -> list[Path]:
    return [d for d in PLUGIN_DIRS if d.is_dir()]


def find_plugin(kind: str) -> Path:
    for directory in plugin_dirs():
        path = directory / kind
        if path.is_file() and os.access(path, os.X_OK):
            return path
    where = " or ".join(str(d) for d in PLUGIN_DIRS)
    raise LabError(f"CNI plugin {kind!r} is not installed in {where}; apt-get install containernetworking-plugins")


def read_conflist(root: Path) -> dict[str, Any]:
    """The node's generated conflist, from its sandbox (written by `lazyjack up`)."""
    path = root / CONFLIST.lstrip("/")
    data: dict[str, Any] = read_json(
        path, missing=f"{path} does not exist: `lazyjack up` writes it (did lab up finish?)", what="the CNI config")
    if not isinstance(data, dict) or not isinstance(data.get("plugins"), list) or not data["plugins"]:
        raise LabError(f"{path} lists no plugins")
    return data


def plugin_stdin(conflist: dict[str, Any], plugin: dict[str, Any], *, prev: Result | None, data_dir: Path) -> bytes:
    """One plugin's configuration as the spec derives it from the list; host-local's dataDir set."""
    conf = json.loads(json.dumps(plugin))  # a deep copy
    conf["cniVersion"] = conflist["cniVersion"]
    conf["name"] = conflist["name"]
    if prev is not None:
        conf["prevResult"] = prev
    ipam = conf.get("ipam")
    if isinstance(ipam, dict) and ipam.get("type") == "host-local":
        ipam["dataDir"] = str(data_dir)
    return json.dumps(conf).encode()


def _invoke(proc: RunnerAPI, *, command: str, node_ns: str, pod_ns: str, container: str, plugin: dict[str, Any],
            stdin: bytes) -> Result:
    path = find_plugin(str(plugin.get("type")))
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": str(NETNS_DIR / pod_ns),
        "CNI_IFNAME": IFNAME,
        "CNI_PATH": os.pathsep.join(str(d) for d in plugin_dirs()),
    }
    try:
        done = proc.run([*nsenter(node_ns), str(path)], timeout=TIMEOUT, input=stdin, env=env, check=False)
    except CommandFailed as exc:
        raise LabError(f"CNI {command} with {path.name} in {node_ns}: {exc}") from None
    if done.returncode != 0:
        raise LabError(f"CNI {command} with {path.name} in {node_ns} failed (exit {done.returncode}): "
                       f"{_error_text(done.stdout) or done.output.strip()}")
    if command == "DEL" or not done.stdout.strip():
        return {}
    try:
        result: Result = json.loads(done.stdout)
    except ValueError:
        raise LabError(f"CNI ADD with {path.name} printed no JSON result: {done.stdout[:500]!r}") from None
    return result


def _error_text(stdout: str) -> str:
    """The spec's error object: {"code", "msg", "details"}."""
    try:
        err = json.loads(stdout)
    except ValueError:
        return ""
    if not isinstance(err, dict) or "msg" not in err:
        return ""
    details = f" ({err['details']})" if err.get("details") else ""
    return f"{err['msg']}{details} [code {err.get('code')}]"


def add(proc: RunnerAPI, *, root: Path, node_ns: str, pod_ns: str, container: str, data_dir: Path) -> Result:
    """CNI ADD of the whole list; on a failure, DEL of the plugins already added, in reverse order."""
    conflist = read_conflist(root)
    data_dir.mkdir(parents=True, exist_ok=True)
    prev: Result | None = None
    done: list[dict[str, Any]] = []
    for plugin in conflist["plugins"]:
        try:
            prev = _invoke(proc, command="ADD", node_ns=node_ns, pod_ns=pod_ns, container=container, plugin=plugin,
                           stdin=plugin_stdin(conflist, plugin, prev=prev, data_dir=data_dir))
        except BaseException:
            for added in [*reversed(done), plugin]:
                with contextlib.suppress(LabError):
                    _invoke(proc, command="DEL", node_ns=node_ns, pod_ns=pod_ns, container=container, plugin=added,
                            stdin=plugin_stdin(conflist, added, prev=prev, data_dir=data_dir))
            raise
        done.append(plugin)
    assert prev is not None
    return prev


def delete(proc: RunnerAPI, *, root: Path, node_ns: str, pod_ns: str, container: str, data_dir: Path,
           result: Result | None) -> None:
    """CNI DEL of the whole list, last plugin first, each with the ADD result as prevResult."""
    conflist = read_conflist(root)
    for plugin in reversed(conflist["plugins"]):
        _invoke(proc, command="DEL", node_ns=node_ns, pod_ns=pod_ns, container=container, plugin=plugin,
                stdin=plugin_stdin(conflist, plugin, prev=result or None, data_dir=data_dir))


def pod_addresses(result: Result) -> list[str]:
    """The pod's addresses (without prefix length) from an ADD result, in its order."""
    return [str(entry["address"]).split("/")[0] for entry in result.get("ips", [])]
