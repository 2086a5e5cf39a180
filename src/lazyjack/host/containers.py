"""The Docker Engine API over a unix socket (docker, and podman's compatible service): networks, containers, exec.

One HTTP request per connection (http.client over an AF_UNIX socket), JSON in and out, a
timeout on every call. The API version is negotiated once through `/version`: the lower of
the engine's and `CLIENT_API`. Every failure is a HostError: `EngineUnreachable` when
nothing answers on the socket, `EngineError` (with the HTTP status and the engine's message)
when the engine refuses a request, `EngineNotFound` and `EngineConflict` for 404 and 409.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from lazyjack.errors import CommandFailed, HostError
from lazyjack.host.daemon import DaemonsAPI

#: The newest API version this client speaks (Docker 20.10; podman 4 serves the same).
CLIENT_API = (1, 41)
#: The oldest it accepts: user-defined networks with EnableIPv6 and static addresses per endpoint.
MINIMUM_API = (1, 25)
DEFAULT_TIMEOUT = 30.0
#: Pulling an image may take long; it has its own deadline.
PULL_TIMEOUT = 900.0

DEFAULT_SOCKETS = {"docker": "/var/run/docker.sock", "podman": "/run/podman/podman.sock"}
#: Environment variables that point lazyjack at another socket (tests, rootless set-ups).
SOCKET_ENV = {"docker": "LAZYJACK_DOCKER_SOCKET", "podman": "LAZYJACK_PODMAN_SOCKET"}

JSONValue = Any


class EngineUnreachable(HostError):
    """Nothing answers on the engine's socket (not running, wrong path, or too slow)."""

    def __init__(self, engine: str, socket_path: str, reason: str, *, hint: str = "", absent: bool = False) -> None:
        self.engine = engine
        self.socket_path = socket_path
        self.reason = reason
        #: True when no one listens at all (no socket file, or connection refused): starting a service may help.
        self.absent = absent
        text = f"cannot reach the {engine} API on {socket_path}: {reason}"
        super().__init__(f"{text}; {hint}" if hint else text)


class EngineError(HostError):
    """The engine answered a request with an error: `.status` is the HTTP status, `.message` its text."""

    def __init__(self, engine: str, method: str, path: str, status: int, message: str) -> None:
        self.engine = engine
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"{engine} API {method} {path} failed with HTTP {status}: {message}")


class EngineNotFound(EngineError):
    """HTTP 404: no such container, network, image or exec instance."""


class EngineConflict(EngineError):
    """HTTP 409: a name in use, a container not running, a network with endpoints."""


def _error_for(status: int) -> type[EngineError]:
    return {404: EngineNotFound, 409: EngineConflict}.get(status, EngineError)


def socket_for(runtime: str, env: Mapping[str, str] | None = None) -> str:
    """The socket of `runtime`: LAZYJACK_<RUNTIME>_SOCKET, else (docker) a unix:// DOCKER_HOST, else the default."""
    env = os.environ if env is None else env
    chosen = env.get(SOCKET_ENV[runtime], "")
    if chosen:
        return chosen.removeprefix("unix://")
    docker_host = env.get("DOCKER_HOST", "")
    if runtime == "docker" and docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://")
    return DEFAULT_SOCKETS[runtime]


@dataclass(frozen=True)
class ExecResult:
    """A command run in a container: its exit code and what it wrote (stdout then stderr)."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket; the host name only fills the Host header."""

    def __init__(self, path: str, *, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def demux(stream: bytes) -> tuple[bytes, bytes]:
    """Split the engine's multiplexed stream (8-byte frame headers: kind, 0, 0, 0, big-endian length).

    Kind 1 is stdout, 2 stderr. A stream that does not start with a frame header is a raw
    (TTY) stream and counts as stdout.
    """
    out, err = bytearray(), bytearray()
    offset = 0
    if stream and stream[0] not in (0, 1, 2):
        return stream, b""
    while offset + 8 <= len(stream):
        kind, length = struct.unpack(">BxxxL", stream[offset:offset + 8])
        chunk = stream[offset + 8:offset + 8 + length]
        (err if kind == 2 else out).extend(chunk)
        offset += 8 + length
    return bytes(out), bytes(err)


def image_reference(image: str) -> tuple[str, str]:
    """(name, tag-or-digest) for a pull: `lazyjack/tayga` -> (`lazyjack/tayga`, `latest`)."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, "latest"


class Engine:
    """A client of one engine's API socket.

    `starter`, if given, is called once when nothing listens on the socket, and the
    request is tried again: podman's API service is started on demand that way.
    """

    def __init__(
        self,
        socket_path: str,
        *,
        name: str = "docker",
        timeout: float = DEFAULT_TIMEOUT,
        starter: Callable[[Engine], None] | None = None,
        hint: str = "",
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.socket_path = socket_path
        self.name = name
        self.timeout = timeout
        self.hint = hint
        self._starter = starter
        self._api: tuple[int, int] | None = None

    # --- transport ---------------------------------------------------------------------

    def _raw(
        self,
        method: str,
        path: str,
        *,
        body: JSONValue = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body). Connection failures become EngineUnreachable."""
        wait = self.timeout if timeout is None else timeout
        conn = _UnixHTTPConnection(self.socket_path, timeout=wait)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            return response.status, payload
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise EngineUnreachable(self.name, self.socket_path, exc.strerror or str(exc), hint=self.hint,
                                    absent=True) from None
        except TimeoutError:
            raise EngineUnreachable(self.name, self.socket_path,
                                    f"no answer to {method} {path} within {wait:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise EngineUnreachable(self.name, self.socket_path, f"{method} {path}: {exc}") from None
        finally:
            conn.close()

    def _send(self, method: str, path: str, *, body: JSONValue = None, timeout: float | None = None) -> tuple[int, bytes]:
        try:
            return self._raw(method, path, body=body, timeout=timeout)
        except EngineUnreachable as exc:
            starter, self._starter = self._starter, None
            if starter is None or not exc.absent:
                raise
            starter(self)
            return self._raw(method, path, body=body, timeout=timeout)

    @property
    def api_version(self) -> tuple[int, int]:
        """The API version spoken with this engine (asked once)."""
        if self._api is None:
            info = self.version()
            text = str(info.get("ApiVersion", ""))
            try:
                major, minor = (int(part) for part in text.split(".", 1))
            except ValueError:
                raise EngineError(self.name, "GET", "/version", 200,
                                  f"the engine reports API version {text!r}, which is not MAJOR.MINOR") from None
            if (major, minor) < MINIMUM_API:
                raise EngineError(
                    self.name, "GET", "/version", 200,
                    f"the engine speaks API {text}; lazyjack needs {MINIMUM_API[0]}.{MINIMUM_API[1]} or newer",
                )
            self._api = min((major, minor), CLIENT_API)
        return self._api

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: JSONValue = None,
        timeout: float | None = None,
    ) -> bytes:
        """A versioned API call; returns the body of a 2xx answer, raises EngineError for the rest."""
        major, minor = self.api_version
        target = f"/v{major}.{minor}{path}"
        if query:
            target += "?" + urlencode(query)
        status, payload = self._send(method, target, body=body, timeout=timeout)
        if status >= 400:
            raise _error_for(status)(self.name, method, path, status, _message(payload))
        return payload

    def json(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: JSONValue = None,
             timeout: float | None = None) -> JSONValue:
        payload = self.request(method, path, query=query, body=body, timeout=timeout)
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise EngineError(self.name, method, path, 200, f"the answer is not JSON: {payload[:200]!r}") from None

    # --- engine ------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        """GET /version (unversioned, as the negotiation needs)."""
        status, payload = self._send("GET", "/version")
        if status >= 400:
            raise _error_for(status)(self.name, "GET", "/version", status, _message(payload))
        try:
            info = json.loads(payload)
        except ValueError:
            raise EngineError(self.name, "GET", "/version", status, f"not JSON: {payload[:200]!r}") from None
        if not isinstance(info, dict):
            raise EngineError(self.name, "GET", "/version", status, "the answer is not a JSON object")
        return info

    def answers(self) -> bool:
        """Whether the engine answers /_ping now (no starter, no retry)."""
        try:
            status, _ = self._raw("GET", "/_ping", timeout=min(self.timeout, 5.0))
        except EngineUnreachable:
            return False
        return status == 200

    # --- images ------------------------------------------------------------------------

    def image(self, ref: str) -> dict[str, Any] | None:
        """The image's inspect data, or None when the engine does not have it."""
        return self._inspect(f"/images/{_seg(ref)}/json")

    def pull(self, ref: str, *, timeout: float = PULL_TIMEOUT) -> None:
        """Pull an image; errors reported inside the progress stream become EngineError."""
        name, tag = image_reference(ref)
        payload = self.request("POST", "/images/create", query={"fromImage": name, "tag": tag}, timeout=timeout)
        for line in payload.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("error"):
                raise EngineError(self.name, "POST", "/images/create", 200, f"pull of {ref}: {event['error']}")

    # --- networks ----------------------------------------------------------------------

    def network(self, name: str) -> dict[str, Any] | None:
        return self._inspect(f"/networks/{_seg(name)}")

    def create_network(self, spec: dict[str, Any]) -> str:
        answer = self.json("POST", "/networks/create", body=spec)
        return str((answer or {}).get("Id", ""))

    def remove_network(self, name: str) -> bool:
        """Remove a network; False when it does not exist."""
        try:
            self.request("DELETE", f"/networks/{_seg(name)}")
        except EngineNotFound:
            return False
        return True

    # --- containers --------------------------------------------------------------------

    def container(self, name: str) -> dict[str, Any] | None:
        return self._inspect(f"/containers/{_seg(name)}/json")

    def containers(self, *, label: str) -> list[dict[str, Any]]:
        """Every container (running or not) carrying `label`."""
        answer = self.json("GET", "/containers/json",
                           query={"all": "1", "filters": json.dumps({"label": [label]})})
        return list(answer or [])

    def create_container(self, name: str, spec: dict[str, Any]) -> str:
        answer = self.json("POST", "/containers/create", query={"name": name}, body=spec)
        return str((answer or {}).get("Id", ""))

    def start(self, name: str) -> None:
        self.request("POST", f"/containers/{_seg(name)}/start")

    def remove_container(self, name: str, *, stop_timeout: int = 10) -> bool:
        """Stop (SIGTERM, then SIGKILL after `stop_timeout`) and remove; False when it does not exist."""
        wait = self.timeout + stop_timeout
        try:
            self.request("POST", f"/containers/{_seg(name)}/stop", query={"t": str(stop_timeout)}, timeout=wait)
        except EngineNotFound:
            return False
        except EngineError as exc:
            if exc.status != 304:  # 304: already stopped
                raise
        try:
            self.request("DELETE", f"/containers/{_seg(name)}", query={"force": "1", "v": "1"}, timeout=wait)
        except EngineNotFound:
            return False
        return True

    def run_once(self, name: str, spec: dict[str, Any], *, timeout: float) -> tuple[int, str]:
        """Create and start a container, wait for it to end (at most `timeout` seconds), remove it;
        return its exit code and output."""
        self.create_container(name, spec)
        try:
            self.start(name)
            answer = self.json("POST", f"/containers/{_seg(name)}/wait", timeout=self.timeout + timeout)
            code = int((answer or {}).get("StatusCode", -1))
            return code, self.logs(name, tail=100)
        finally:
            self.remove_container(name, stop_timeout=1)

    def logs(self, name: str, *, tail: int = 40) -> str:
        """The container's last lines of output, for error messages ('' when unavailable)."""
        try:
            payload = self.request("GET", f"/containers/{_seg(name)}/logs",
                                   query={"stdout": "1", "stderr": "1", "tail": str(tail)})
        except HostError:
            return ""
        out, err = demux(payload)
        return (out + err).decode(errors="replace")

    def exec(self, name: str, argv: list[str], *, timeout: float = DEFAULT_TIMEOUT) -> ExecResult:
        """Run argv in a running container and wait for it (at most `timeout` seconds)."""
        created = self.json("POST", f"/containers/{_seg(name)}/exec",
                            body={"Cmd": argv, "AttachStdout": True, "AttachStderr": True, "Tty": False})
        exec_id = str((created or {}).get("Id", ""))
        if not exec_id:
            raise EngineError(self.name, "POST", f"/containers/{name}/exec", 200, "no exec id in the answer")
        payload = self.request("POST", f"/exec/{_seg(exec_id)}/start", body={"Detach": False, "Tty": False},
                               timeout=timeout)
        out, err = demux(payload)
        # The stream ends when the command does; its exit code may take a moment to be recorded.
        deadline = time.monotonic() + min(timeout, 10.0)
        while True:
            info = self.json("GET", f"/exec/{_seg(exec_id)}/json") or {}
            code = info.get("ExitCode")
            if not info.get("Running") and code is not None:
                break
            if time.monotonic() >= deadline:
                raise EngineError(self.name, "GET", f"/exec/{exec_id}/json", 200,
                                  f"{' '.join(argv)} in {name} did not report an exit code")
            time.sleep(0.05)
        return ExecResult(argv, int(code), out.decode(errors="replace"), err.decode(errors="replace"))

    # --- helpers -----------------------------------------------------------------------

    def _inspect(self, path: str) -> dict[str, Any] | None:
        try:
            answer = self.json("GET", path)
        except EngineNotFound:
            return None
        if not isinstance(answer, dict):
            raise EngineError(self.name, "GET", path, 200, "the answer is not a JSON object")
        return answer


def _seg(value: str) -> str:
    """A name quoted for a URL path (image references keep their slashes and colons: the API routes them)."""
    return quote(value, safe="/:@")


def _message(payload: bytes) -> str:
    try:
        answer = json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace").strip() or "(no message)"
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("cause") or answer)
    return str(answer)


class PodmanService:
    """Starts `podman system service` when nothing answers on its socket (a starter for `Engine`).

    The service is started with an idle timeout, so it ends by itself once lazyjack stops
    talking to it: nothing long-running stays behind, and there is nothing to journal or
    stop at clean. The containers do not need it (conmon supervises them); a later run
    starts it again. A service that already listens (systemd's podman.socket) is used as is.
    """

    def __init__(self, *, daemons: DaemonsAPI, state_dir: Path, idle: int = 60, start_timeout: float = 20.0,
                 program: str = "podman") -> None:
        self.daemons = daemons
        self.state_dir = state_dir
        self.idle = idle
        self.start_timeout = start_timeout
        self.program = program

    def argv(self, socket_path: str) -> list[str]:
        return [self.program, "system", "service", f"--time={self.idle}", f"unix://{socket_path}"]

    def __call__(self, engine: Engine) -> None:
        pid_file, log_file = self.state_dir / "podman-service.pid", self.state_dir / "podman-service.log"
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # podman binds the socket but does not create its directory.
        Path(engine.socket_path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = self.argv(engine.socket_path)
        try:
            pid = self.daemons.start(argv, pid_file=pid_file, log_file=log_file)
        except CommandFailed as exc:
            log_file.unlink(missing_ok=True)
            reason = exc.output.strip() or (str(exc).splitlines() or ["it failed"])[0]
            # Not installed, or refusing to start: there is no podman on this node to talk to.
            raise EngineUnreachable(engine.name, engine.socket_path, f"cannot start {argv[0]}: {reason}",
                                    absent=True) from None

        def alive() -> bool:
            return self.daemons.running(pid_file, program=self.program) == pid

        if not wait_for_socket(engine, timeout=self.start_timeout, alive=alive):
            self.daemons.stop(pid_file, program=self.program)
            log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            log_file.unlink(missing_ok=True)
            raise EngineUnreachable(
                engine.name, engine.socket_path,
                f"started {' '.join(argv)}, but it did not answer within {self.start_timeout:g}s"
                + (f"; it wrote:\n{log.rstrip()}" if log.strip() else ""),
            )
        # It ends by itself when idle: a pid file or log left behind would only mislead (the log
        # stays readable by the service, which holds it open).
        pid_file.unlink(missing_ok=True)
        log_file.unlink(missing_ok=True)


def wait_for_socket(engine: Engine, *, timeout: float, alive: Callable[[], bool]) -> bool:
    """Poll until the engine answers, at most `timeout` seconds, while `alive()` holds."""
    deadline = time.monotonic() + timeout
    while True:
        if engine.answers():
            return True
        if time.monotonic() >= deadline or not alive():
            return False
        time.sleep(0.05)
