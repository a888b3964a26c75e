"""Atomic writes: a file or directory appears complete under its final name, or not at all.

Both follow the user's umask: ``tempfile`` makes its files 0600 and directories 0700 (private by design), which
a renamed result would otherwise keep. A write that fails (full disk, no permission) raises :class:`WriteError`
naming the file; whatever was under the final name before is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import BoltirError, ConfigError, WriteError

# errno values that mean "the system refused the write", as engines written in C or Rust quote them
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO)


def current_umask() -> int:
    """The process's umask (read from /proc where it exists: setting it to read it is not thread-safe)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_failure(path: str | os.PathLike[str], exc: OSError, kept: str) -> WriteError:
    """One line for a failed write: the file, the system's reason, and what is left as it was."""
    reason = exc.strerror or str(exc)
    other = f" ({exc.filename})" if exc.filename and Path(exc.filename).name != Path(path).name else ""
    return WriteError(f"could not write {path}: {reason}{other}; {kept}.")


def write_reason(exc: BaseException) -> str | None:
    """Why a write failed when ``exc`` is the system refusing it: an OSError, or an engine's own error (Faiss,
    safetensors) quoting one; None for anything else (a bug should surface as itself)."""
    if isinstance(exc, BoltirError):
        return None
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return next((os.strerror(n) for n in _WRITE_ERRNOS if os.strerror(n) in str(exc)), None)


def writable_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Create ``path`` if needed and prove a file can be made in it, before any work is done for it.

    Raises :class:`ConfigError` naming ``option`` when it cannot (under a regular file, no permission, read-only).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a directory: choose a writable directory.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".boltir-write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{option} {path} cannot be written ({exc.strerror or exc}): choose a writable directory.") from exc
    return path


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w") -> Iterator:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.replace(tmp, path)
    except WriteError:
        _unlink(tmp)
        raise
    except OSError as exc:
        _unlink(tmp)
        raise write_failure(path, exc, "nothing was written under that name") from exc
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` only if the block succeeds.

    A build killed half-way leaves a hidden ``.name.*.tmp`` directory, never a half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp.chmod(0o777 & ~current_umask())
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
