"""Files of the host, under a root directory (`--root`), written atomically.

Every path argument is an absolute host path such as "/etc/hosts". It is looked up under
`root` the way a chroot would: symbolic links are followed inside the root, an absolute link
target starts again at the root, and nothing can lead outside it (that is a HostError). With
root "/" this is the real filesystem.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat as stat_module
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePath, PurePosixPath
from typing import TypeVar

from lazyjack.errors import FileOperationFailed, HostError

HostPath = str | PurePath
T = TypeVar("T")

DEFAULT_FILE_MODE = 0o644
#: Keys, tokens, and whatever holds one.
SECRET_FILE_MODE = 0o600
DEFAULT_DIR_MODE = 0o755
# As the kernel's limit on symbolic links followed during one lookup.
MAX_SYMLINKS = 40


def replace_file(path: Path, data: bytes, *, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Give the file at `path` (a real path) the contents `data` all at once, or leave it as it was.

    The data goes to a temp file in the same directory, which gets `owner` (uid, gid) and then
    `mode` (a chown may clear set-id bits), is synced to disk and renamed over `path`; the
    directory is synced too, so that the rename itself lasts. On any failure, also an interrupt
    (Ctrl-C, SIGTERM), the temp file is removed and the error goes on: OSError as the system gave it.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _fill(fd, data, mode=mode, owner=owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_dir(path.parent)


def open_directory(path: PurePath, *, create_mode: int | None = None) -> int:
    """A descriptor of the directory `path` (absolute), opened one component at a time without following links.

    Missing directories are made with `create_mode` when given (else FileNotFoundError). A
    symbolic link anywhere is a HostError naming it: a link planted at the path, or one of its
    directories swapped for a link since the path was resolved, cannot redirect a write as root.
    """
    if not path.is_absolute():
        raise HostError(f"{path} must be an absolute path")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", flags)
    try:
        for part in path.parts[1:]:
            try:
                child = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if create_mode is None:
                    raise
                os.mkdir(part, create_mode, dir_fd=fd)
                child = os.open(part, flags, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise HostError(f"{path}: {part!r} is a symbolic link or not a directory; lazyjack does not "
                                    "follow it there (make it a real directory)") from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_at(dirfd: int, name: str, data: bytes, *, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Give the file `name` in the directory `dirfd` the contents `data` all at once, never through a link.

    As `replace_file`, relative to a directory descriptor: a temp file beside it gets `owner` and
    `mode`, is synced and renamed over `name`. A symbolic link at `name` is refused (a rename would
    replace the link, which is not what anyone meant either).
    """
    with contextlib.suppress(FileNotFoundError):
        if stat_module.S_ISLNK(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
            raise HostError(f"{name} is a symbolic link; lazyjack does not write through it (remove it and run again)")
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dirfd)
    try:
        _fill(fd, data, mode=mode, owner=owner)
        os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dirfd)
        raise
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
        os.fsync(dirfd)


def _fill(fd: int, data: bytes, *, mode: int, owner: tuple[int, int] | None) -> None:
    """A new temp file's content, owner and mode (after the chown, which may clear set-id bits), on disk;
    the descriptor is closed whatever happens."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(directory: Path) -> None:
    # Makes a rename durable; some filesystems refuse fsync on a directory.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Files:
    """Reads and changes files under `root`; see the module docstring for path lookup."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))

    # Paths -------------------------------------------------------------------------------

    def resolve(self, path: HostPath, *, follow: bool = True) -> Path:
        """The real path under root for a host path, symbolic links followed inside the root.

        With follow=False a final symbolic link is not followed (to act on the link itself).
        Components that do not exist yet are taken as they are.
        """
        host = PurePosixPath(path)
        if not host.is_absolute():
            raise HostError(f"path {str(path)!r} must be absolute (a path on the host, like /etc/hosts)")
        todo = list(reversed(host.parts[1:]))
        done: list[str] = []
        links = 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise HostError(f"path {path} leads outside the root {self.root}")
                done.pop()
                continue
            real = self.root.joinpath(*done, part)
            if (todo or follow) and real.is_symlink():
                links += 1
                if links > MAX_SYMLINKS:
                    raise FileOperationFailed("resolve", str(path), errno.ELOOP, root=str(self.root))
                target = PurePosixPath(os.readlink(real))
                if target.is_absolute():
                    done = []
                    todo.extend(reversed(target.parts[1:]))
                else:
                    todo.extend(reversed(target.parts))
                continue
            done.append(part)
        return self.root.joinpath(*done)

    def _fail(self, operation: str, path: HostPath, err: OSError) -> FileOperationFailed:
        return FileOperationFailed(operation, str(path), err.errno or errno.EIO, root=str(self.root))

    # Reading -----------------------------------------------------------------------------

    def _unless_missing(self, operation: str, path: HostPath, action: Callable[[Path], T]) -> T | None:
        """`action` on the real path; None when the file does not exist, FileOperationFailed on other errors."""
        try:
            return action(self.resolve(path))
        except FileNotFoundError:
            return None
        except OSError as e:
            raise self._fail(operation, path, e) from e

    def read_bytes(self, path: HostPath) -> bytes | None:
        """The file's contents, or None when it does not exist."""
        return self._unless_missing("read", path, Path.read_bytes)

    def read_text(self, path: HostPath, *, encoding: str = "utf-8") -> str | None:
        data = self.read_bytes(path)
        if data is None:
            return None
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            raise HostError(f"{path} is not {encoding} text: {e}") from e

    def exists(self, path: HostPath) -> bool:
        """True when the path exists; a dangling symbolic link does not."""
        return self.resolve(path).exists()

    def is_symlink(self, path: HostPath) -> bool:
        return self.resolve(path, follow=False).is_symlink()

    def listdir(self, path: HostPath) -> list[str]:
        """Names in the directory, sorted; FileOperationFailed when it is missing."""
        try:
            return sorted(os.listdir(self.resolve(path)))
        except OSError as e:
            raise self._fail("list", path, e) from e

    def stat(self, path: HostPath) -> os.stat_result | None:
        """stat of the file (links followed), or None when it does not exist."""
        return self._unless_missing("stat", path, Path.stat)

    # Changing ----------------------------------------------------------------------------

    def makedirs(self, path: HostPath, mode: int = DEFAULT_DIR_MODE) -> None:
        """Create the directory with exactly `mode` (umask not applied), missing parents with the usual 0755.

        Only the directory asked for is restricted: a missing /var/lib made on the way to a
        0700 /var/lib/lazyjack must not lock everyone else out of /var/lib.
        """
        real = self.resolve(path)
        missing: list[Path] = []
        probe = real
        while not probe.exists() and probe != self.root:
            missing.append(probe)
            probe = probe.parent
        try:
            for directory in reversed(missing):
                wanted = mode if directory == real else DEFAULT_DIR_MODE
                directory.mkdir(wanted)
                # mkdir applies the umask; the caller asked for this mode.
                os.chmod(directory, wanted)
        except OSError as e:
            raise self._fail("create directory", path, e) from e
        if not real.is_dir():
            raise self._fail("create directory", path, NotADirectoryError(errno.ENOTDIR, ""))

    def write_atomic(self, path: HostPath, data: bytes, *, mode: int | None = None) -> None:
        """Replace the file's contents all at once: temp file in the same directory, fsync, rename.

        An existing file keeps its owner, group and mode (`mode` is then ignored: chmod to
        change it); a new file gets `mode` or 0o644, and missing directories 0o755. A
        symbolic link is followed: its target is replaced and the link stays.
        """
        self._write(path, data, mode=mode, force_mode=False)

    def write_secret(self, path: HostPath, data: bytes) -> None:
        """Like write_atomic, for a file that holds a secret (a key, a token): mode 0600 whatever the file had,
        its owner kept."""
        self._write(path, data, mode=SECRET_FILE_MODE, force_mode=True)

    def _write(self, path: HostPath, data: bytes, *, mode: int | None, force_mode: bool) -> None:
        real = self.resolve(path)
        try:
            old = real.stat()
        except FileNotFoundError:
            old = None
        except OSError as e:
            raise self._fail("write", path, e) from e
        if old is not None and not stat_module.S_ISREG(old.st_mode):
            raise self._fail("write", path, IsADirectoryError(errno.EISDIR, ""))
        if force_mode and mode is not None:
            new_mode = mode
        elif old is not None:
            new_mode = stat_module.S_IMODE(old.st_mode)
        else:
            new_mode = DEFAULT_FILE_MODE if mode is None else mode
        self.makedirs(PurePosixPath(path).parent)
        owner = (old.st_uid, old.st_gid) if old is not None else None
        try:
            replace_file(real, data, mode=new_mode, owner=owner)
        except OSError as e:
            raise self._fail("write", path, e) from e

    def remove(self, path: HostPath) -> bool:
        """Remove the file (a symbolic link itself, not its target); False when absent."""
        real = self.resolve(path, follow=False)
        try:
            real.unlink()
        except FileNotFoundError:
            return False
        except OSError as e:
            raise self._fail("remove", path, e) from e
        return True

    def readlink(self, path: HostPath) -> str | None:
        """Where the symbolic link points (as written in it), or None when `path` is not a symbolic link."""
        real = self.resolve(path, follow=False)
        try:
            return os.readlink(real)
        except (FileNotFoundError, OSError) as e:
            if isinstance(e, FileNotFoundError) or e.errno == errno.EINVAL:
                return None
            raise self._fail("read link", path, e) from e

    def symlink(self, path: HostPath, target: str) -> None:
        """Make `path` a symbolic link to `target` (kept as given: an absolute target is a host path)."""
        try:
            os.symlink(target, self.resolve(path, follow=False))
        except OSError as e:
            raise self._fail("create symbolic link", path, e) from e

    def rmdir(self, path: HostPath) -> bool:
        """Remove an empty directory; False when absent, ENOTEMPTY when something is in it."""
        try:
            self.resolve(path, follow=False).rmdir()
        except FileNotFoundError:
            return False
        except OSError as e:
            raise self._fail("remove directory", path, e) from e
        return True

    def chmod(self, path: HostPath, mode: int) -> None:
        try:
            os.chmod(self.resolve(path), mode)
        except OSError as e:
            raise self._fail("chmod", path, e) from e

    def chown(self, path: HostPath, uid: int, gid: int) -> None:
        try:
            os.chown(self.resolve(path), uid, gid)
        except OSError as e:
            raise self._fail("chown", path, e) from e

    def copy(self, src: HostPath, dst: HostPath, *, mode: int | None = None) -> None:
        """Copy src's contents to dst atomically; dst gets `mode`, else src's mode.

        An existing dst keeps its owner; a new one belongs to whoever runs lazyjack.
        """
        data = self.read_bytes(src)
        info = self.stat(src)
        if data is None or info is None:
            raise self._fail("copy", src, FileNotFoundError(errno.ENOENT, ""))
        new_mode = stat_module.S_IMODE(info.st_mode) if mode is None else mode
        self._write(dst, data, mode=new_mode, force_mode=True)

    def backup(self, path: HostPath, suffix: str = ".bak") -> bool:
        """Copy the file to path+suffix once, keeping its mode and owner.

        False when there is nothing to back up (no file) or a backup is already there: a
        second run must not replace the original with an edited copy.
        """
        if "/" in suffix or not suffix:
            raise ValueError(f"backup suffix {suffix!r} must be a non-empty file name ending")
        host = PurePosixPath(path)
        target = host.with_name(host.name + suffix)
        info = self.stat(path)
        if info is None or self.exists(target) or self.is_symlink(target):
            return False
        self.copy(path, target)
        self.chown(target, info.st_uid, info.st_gid)
        return True
