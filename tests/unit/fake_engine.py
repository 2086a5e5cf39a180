"""A fake container engine for unit tests: a real HTTP server on a unix socket that answers like the Docker API.

It keeps images, networks, containers and exec instances in memory, answers the requests
lazyjack makes (and 404/409 as the real engine does), and records every request so tests
can assert what was asked. `exec_answer` decides what a command run in a container prints
and returns; by default every command succeeds silently.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socketserver
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ExecAnswer = Callable[[str, list[str]], tuple[int, str, str]]


@dataclass
class Request:
    method: str
    path: str  # without the version prefix
    version: str | None  # "1.41", or None for an unversioned request
    query: dict[str, str]
    body: Any


@dataclass
class EngineState:
    api_version: str = "1.41"
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    pullable: dict[str, str] = field(default_factory=dict)  # ref -> image id a pull brings
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    execs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    exec_answer: ExecAnswer = field(default=lambda _name, _argv: (0, "", ""))
    # What a container run to its end (`wait`) returns and prints, by name and argv: a tayga probe.
    run_answer: ExecAnswer = field(default=lambda _name, _argv: (0, "", ""))
    # Requests ("METHOD /path") answered once with (status, message) instead of acting.
    fail_once: dict[str, tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_image(self, ref: str, image_id: str = "") -> str:
        image_id = image_id or "sha256:" + uuid.uuid4().hex * 2
        self.images[ref] = {"Id": image_id, "RepoTags": [ref]}
        return image_id

    def calls(self, method: str | None = None) -> list[str]:
        """`METHOD /path` of every versioned request (method filtered if given)."""
        return [f"{r.method} {r.path}" for r in self.requests
                if r.version is not None and (method is None or r.method == method)]

    def execs_run(self, name: str) -> list[list[str]]:
        return [e["argv"] for e in self.execs.values() if e["container"] == name]


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(data)) + data


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None,
              content_type: str = "application/json") -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"message": message})

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        match = re.match(r"^/v(\d+\.\d+)(/.*)$", url.path)
        version, path = (match.group(1), match.group(2)) if match else (None, url.path)
        body = self._body()
        with state.lock:
            state.requests.append(Request(method, path, version, query, body))
            failure = state.fail_once.pop(f"{method} {path}", None)
        if failure is not None:
            self._error(*failure)
            return
        if path == "/version" and version is None:
            self._send(200, {"ApiVersion": state.api_version, "Version": "fake"})
            return
        if path == "/_ping":
            self._send(200, raw=b"OK", content_type="text/plain")
            return
        with state.lock:
            self._route(state, method, path, query, body)

    def _route(self, state: EngineState, method: str, path: str, query: dict[str, str], body: Any) -> None:
        if m := re.fullmatch(r"/images/(.+)/json", path):
            image = state.images.get(m.group(1))
            self._send(200, image) if image else self._error(404, f"No such image: {m.group(1)}")
        elif path == "/images/create" and method == "POST":
            ref = f"{query['fromImage']}:{query['tag']}"
            if ref in state.pullable:
                state.add_image(ref, state.pullable[ref])
                lines = [{"status": "Pulling"}, {"status": "Downloaded newer image"}]
            else:
                lines = [{"status": "Pulling"}, {"error": f"pull access denied for {query['fromImage']}"}]
            self._send(200, raw=b"".join(json.dumps(line).encode() + b"\r\n" for line in lines))
        elif path == "/networks/create" and method == "POST":
            name = body["Name"]
            if name in state.networks:
                self._error(409, f"network with name {name} already exists")
                return
            state.networks[name] = {**body, "Id": uuid.uuid4().hex, "Containers": {}}
            self._send(201, {"Id": state.networks[name]["Id"], "Warning": ""})
        elif m := re.fullmatch(r"/networks/([^/]+)", path):
            self._network(state, method, m.group(1))
        elif path == "/containers/create" and method == "POST":
            self._create(state, query["name"], body)
        elif path == "/containers/json":
            self._send(200, [{"Names": [f"/{n}"], "Labels": c["Config"]["Labels"]} for n, c in state.containers.items()])
        elif m := re.fullmatch(r"/containers/([^/]+)(?:/(\w+))?", path):
            self._container(state, method, m.group(1), m.group(2) or "", query, body)
        elif m := re.fullmatch(r"/exec/([^/]+)/(start|json)", path):
            self._exec(state, m.group(1), m.group(2))
        else:
            self._error(404, f"page not found: {method} {path}")

    def _network(self, state: EngineState, method: str, name: str) -> None:
        network = state.networks.get(name)
        if network is None:
            self._error(404, f"network {name} not found")
        elif method == "GET":
            self._send(200, network)
        elif network["Containers"]:
            self._error(403, f"error while removing network: network {name} has active endpoints")
        else:
            del state.networks[name]
            self._send(204)

    def _create(self, state: EngineState, name: str, body: dict[str, Any]) -> None:
        if name in state.containers:
            self._error(409, f'Conflict. The container name "/{name}" is already in use')
            return
        image = state.images.get(body["Image"])
        if image is None:
            self._error(404, f"No such image: {body['Image']}")
            return
        network = body["HostConfig"]["NetworkMode"]
        if network != "none" and network not in state.networks:
            self._error(404, f"network {network} not found")
            return
        cid = uuid.uuid4().hex
        state.containers[name] = {
            "Id": cid, "Name": f"/{name}", "Image": image["Id"], "Created": body,
            "Config": {"Labels": dict(body.get("Labels") or {}), "Image": body["Image"],
                       "Entrypoint": body.get("Entrypoint"), "Cmd": body.get("Cmd")},
            "HostConfig": body["HostConfig"],
            "State": {"Running": False, "Status": "created", "ExitCode": 0, "Pid": 0},
        }
        self._send(201, {"Id": cid, "Warnings": []})

    def _container(self, state: EngineState, method: str, name: str, action: str, query: dict[str, str],
                   body: Any) -> None:
        container = state.containers.get(name)
        if container is None:
            self._error(404, f"No such container: {name}")
            return
        network = state.networks.get(container["HostConfig"]["NetworkMode"])
        if method == "GET" and action == "json":
            self._send(200, container)
        elif action == "start":
            container["State"] = {"Running": True, "Status": "running", "ExitCode": 0, "Pid": os.getpid()}
            if network is not None:
                network["Containers"][container["Id"]] = {"Name": name}
            self._send(204)
        elif action == "stop":
            if not container["State"]["Running"]:
                self._send(304)
                return
            container["State"] = {"Running": False, "Status": "exited", "ExitCode": 143, "Pid": 0}
            self._send(204)
        elif method == "DELETE" and not action:
            if container["State"]["Running"] and query.get("force") != "1":
                self._error(409, f"You cannot remove a running container {name}")
                return
            if network is not None:
                network["Containers"].pop(container["Id"], None)
            del state.containers[name]
            self._send(204)
        elif action == "wait":
            argv = [*(container["Config"]["Entrypoint"] or []), *(container["Config"]["Cmd"] or [])]
            code, out, err = state.run_answer(name, argv)
            container["State"] = {"Running": False, "Status": "exited", "ExitCode": code, "Pid": 0}
            container["Output"] = (out, err)
            self._send(200, {"StatusCode": code})
        elif action == "logs":
            out, err = container.get("Output", ("named: started\n", "named: giving up\n"))
            self._send(200, raw=(frame(1, out.encode()) if out else b"") + (frame(2, err.encode()) if err else b""),
                       content_type="application/vnd.docker.raw-stream")
        elif action == "exec":
            if not container["State"]["Running"]:
                self._error(409, f"Container {container['Id']} is not running")
                return
            exec_id = uuid.uuid4().hex
            state.execs[exec_id] = {"container": name, "argv": body["Cmd"], "ExitCode": None, "Running": False}
            self._send(201, {"Id": exec_id})
        else:
            self._error(404, f"page not found: {method} /containers/{name}/{action}")

    def _exec(self, state: EngineState, exec_id: str, action: str) -> None:
        instance = state.execs.get(exec_id)
        if instance is None:
            self._error(404, f"No such exec instance: {exec_id}")
            return
        if action == "json":
            self._send(200, {"Running": instance["Running"], "ExitCode": instance["ExitCode"]})
            return
        code, out, err = state.exec_answer(instance["container"], instance["argv"])
        instance["ExitCode"] = code
        stream = (frame(1, out.encode()) if out else b"") + (frame(2, err.encode()) if err else b"")
        # As the engine does: a hijacked connection, the stream until it closes (no length).
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.raw-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(stream)
        self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, state: EngineState) -> None:
        self.state = state
        super().__init__(path, _Handler)


@contextmanager
def fake_engine(socket_path: Path, state: EngineState | None = None) -> Iterator[EngineState]:
    """Serve `state` on `socket_path` while the block runs."""
    state = state if state is not None else EngineState()
    server = _Server(str(socket_path), state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        socket_path.unlink(missing_ok=True)


@contextmanager
def silent_server(socket_path: Path) -> Iterator[None]:
    """A socket that accepts connections and never answers (an engine that hangs)."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(socket_path))
    sock.listen(8)
    try:
        yield
    finally:
        sock.close()
        socket_path.unlink(missing_ok=True)
