"""How an index directory is written: versioned builds, one pointer file, a lock, and a manifest of hashes.

``index_dir`` holds a complete index, the old one or the new one, at every instant of a rebuild::

    index_dir/
      CURRENT      one line naming the live version; replaced atomically (os.replace), never edited in place
      v000003/     the live index: the engine's files, doc_ids.txt and manifest.json (written last)
      .staging/    the build in progress; a killed build leaves it for the next build to remove
      .lock        flock'd by the one process building; holds its pid while it does

A build writes into ``.staging``, writes the manifest (each file's size and SHA-256) last, renames ``.staging``
to the next ``vNNNNNN``, then replaces ``CURRENT``; only then is the old version removed. A kill before the
pointer moves leaves the old index live; after, the new one. Readers follow ``CURRENT``; an index directory
without it (written before this protocol, or a version directory itself) is read in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from .._io import write_failure
from ..errors import ConfigError, IndexLockedError, IndexMismatchError

MANIFEST = "manifest.json"
POINTER = "CURRENT"
STAGING = ".staging"
LOCK = ".lock"
_POINTER_TMP = f".{POINTER}.tmp"
_VERSION = re.compile(r"v\d{6}")
_OURS = {POINTER, STAGING, LOCK, _POINTER_TMP}
T = TypeVar("T")
_HOLDING: weakref.WeakSet[IndexBuild] = weakref.WeakSet()  # builds of this process that hold their lock


def resolve_index(index_dir: str | os.PathLike[str]) -> Path:
    """The directory holding the live index's files: the version ``CURRENT`` names, or ``index_dir`` itself."""
    index_dir = Path(index_dir)
    pointer = index_dir / POINTER
    try:
        name = pointer.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return index_dir if index_dir.exists() else _stranded(index_dir) or index_dir
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexMismatchError(f"{pointer} cannot be read ({exc}): rebuild the index.") from exc
    if not _VERSION.fullmatch(name) or not (index_dir / name).is_dir():
        raise IndexMismatchError(f"{pointer} names {name!r}, which is not a version directory in {index_dir}: rebuild the index.")
    return index_dir / name


def read_live(index_dir: str | os.PathLike[str], read: Callable[[Path], T]) -> T:
    """``read(live_directory)``, again on the new version if a rebuild swapped the pointer (and removed the old
    version) while it was reading."""
    for _ in range(3):
        live = resolve_index(index_dir)
        try:
            return read(live)
        except Exception:
            if resolve_index(index_dir) == live:
                raise
    return read(resolve_index(index_dir))


def read_manifest(index_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The live index's manifest, after checking that every file it lists has the recorded size."""
    directory = resolve_index(index_dir)
    path = directory / MANIFEST
    if not path.is_file():
        raise IndexMismatchError(f"{index_dir} is not a complete boltir index (no {MANIFEST}): build it with `boltir index` first.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexMismatchError(f"{path} is corrupt ({exc}): rebuild the index.") from exc
    _raise_damaged(directory, manifest, hashes=False)
    return manifest


def verify_index(index_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Check every file of the live index against the SHA-256 its manifest records; return the manifest.

    Raises :class:`IndexMismatchError` naming each damaged or missing file.
    """
    directory = resolve_index(index_dir)
    manifest = read_manifest(directory)
    if "files" not in manifest:
        raise IndexMismatchError(f"the index at {directory} was built before boltir recorded file hashes: rebuild it to verify it.")
    _raise_damaged(directory, manifest, hashes=True)
    return manifest


def _raise_damaged(directory: Path, manifest: dict[str, Any], hashes: bool) -> None:
    damaged = []
    for name, recorded in manifest.get("files", {}).items():
        path = directory / name
        try:
            size = path.stat().st_size
        except OSError:
            damaged.append(f"{name} (missing)")
            continue
        if size != recorded["size"]:
            damaged.append(f"{name} ({size} bytes, the manifest records {recorded['size']})")
        elif hashes and _sha256(path) != recorded["sha256"]:
            damaged.append(f"{name} (SHA-256 differs from the manifest's)")
    if damaged:
        raise IndexMismatchError(f"the index at {directory} is damaged: {', '.join(damaged)}: rebuild it.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file's data (or a directory's entries) to disk, so a power cut after a rename keeps it."""
    with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class IndexBuild:
    """One build of ``index_dir``: holds its lock, owns its staging directory, and makes it live atomically::

        build = IndexBuild(index_dir).start()        # fails now if locked or unwritable
        (build.staging / "vectors.npy").write_bytes(...)
        build.commit({"engine": ..., "count": ...})  # adds "files", writes the manifest, moves the pointer

    Starting fails at once with :class:`IndexLockedError` (naming the holder's pid) while another process builds
    ``index_dir``, and with :class:`ConfigError` when ``index_dir`` cannot be written or holds files that are not
    an index. It then removes what killed builds left: the staging directory and versions ``CURRENT`` does not
    name. :meth:`abort` (or an exception inside ``with IndexBuild(...)``) drops the staging and keeps the old index.
    """

    def __init__(self, index_dir: str | os.PathLike[str]) -> None:
        self.index_dir = Path(index_dir)
        self.staging = self.index_dir / STAGING
        self._lock: IO[str] | None = None
        self._legacy: list[Path] = []  # files of an index written before versions, removed once replaced
        self._renamed: Path | None = None
        self._created = False  # whether start() made index_dir (an aborted first build then removes it)

    @property
    def active(self) -> bool:
        """Whether this build holds the lock (started, neither committed nor aborted)."""
        return self._lock is not None

    def start(self) -> IndexBuild:
        """Take the lock, clean up after killed builds, and make an empty staging directory."""
        try:
            _recover_two_rename_swap(self.index_dir)
            _refuse_other_files(self.index_dir)
            self._created = not self.index_dir.exists()
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.index_dir / LOCK, "a+", encoding="ascii")
        except OSError as exc:
            raise ConfigError(f"index_dir {self.index_dir} cannot be written ({exc.strerror or exc}): choose a writable index_dir.") from exc
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(self._lock)
            self._lock.close()
            self._lock = None
            if holder.isdigit() and not _alive(int(holder)):
                raise IndexLockedError(
                    f"{self.index_dir} is locked by processes left by the build of pid {holder}, which has ended: retry when they exit."
                ) from None
            raise IndexLockedError(
                f"{self.index_dir} is being built by another process (pid {holder}): wait for it to finish or choose another index_dir."
            ) from None
        _HOLDING.add(self)
        try:
            self._lock.truncate(0)
            self._lock.write(f"{os.getpid()}\n")
            self._lock.flush()
            self._clean()
            self.staging.mkdir()
        except OSError as exc:
            self._release()
            raise ConfigError(f"index_dir {self.index_dir} cannot be written ({exc.strerror or exc}): choose a writable index_dir.") from exc
        except BaseException:
            self._release()
            raise
        return self

    def _clean(self) -> None:
        try:
            live: Path | None = resolve_index(self.index_dir)
        except IndexMismatchError:  # a damaged pointer: keep every version, the commit writes a new pointer
            live = None
        entries = list(self.index_dir.iterdir())
        if (self.index_dir / MANIFEST).is_file():  # an index written before versions: its files are replaced too
            legacy = [p for p in entries if p.name not in _OURS and not _VERSION.fullmatch(p.name)]
            self._legacy = sorted(legacy, key=lambda p: p.name == MANIFEST)  # the manifest last: the evidence stays
        if live != self.index_dir:  # ... and were already replaced by a version (a build killed before removing them)
            for path in self._legacy:
                _remove(path)
            self._legacy = []
        for path in entries:
            if live is not None and _VERSION.fullmatch(path.name) and path != live:
                _remove(path)  # renamed by a build killed before its pointer moved, or replaced by one killed after
        _remove(self.index_dir / _POINTER_TMP)
        _remove(self.staging)

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Record every staged file's size and SHA-256 in ``manifest``, write it, and make the build live.

        Returns the live version's directory and releases the lock. A write that fails raises
        :class:`~boltir.errors.WriteError` naming the file; the old index stays live.
        """
        if self._lock is None:
            raise RuntimeError("IndexBuild.commit() before start()")
        target, old = self.staging / MANIFEST, None
        try:
            files = {}
            for path in sorted(p for p in self.staging.rglob("*") if p.is_file()):
                target = path
                _fsync(path)
                files[path.relative_to(self.staging).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
            target = self.staging / MANIFEST
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(json.dumps({**manifest, "files": files}, indent=2) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            _fsync(self.staging)
            with contextlib.suppress(IndexMismatchError):  # a damaged pointer: no old version to remove
                old = resolve_index(self.index_dir)
            target = self.index_dir / self._next_version()
            os.replace(self.staging, target)
            self._renamed = target
            _fsync(self.index_dir)
            target = self.index_dir / _POINTER_TMP
            with open(target, "w", encoding="ascii") as handle:
                handle.write(self._renamed.name + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(target, self.index_dir / POINTER)
            _fsync(self.index_dir)
        except OSError as exc:
            self.abort()
            raise write_failure(target, exc, f"the index at {self.index_dir} is unchanged") from exc
        except BaseException:
            self.abort()
            raise
        version, self._renamed = self._renamed, None
        if old is not None and old != self.index_dir:
            _remove(old)
        for path in self._legacy:
            _remove(path)
        self._release()
        return version

    def _next_version(self) -> str:
        numbers = [int(p.name[1:]) for p in self.index_dir.iterdir() if _VERSION.fullmatch(p.name)]
        return f"v{max(numbers, default=0) + 1:06d}"

    def abort(self) -> None:
        """Drop the staged files and release the lock; the live index is untouched."""
        if self._lock is None:
            return
        _remove(self.staging)
        if self._renamed is not None:  # renamed, but the pointer never moved to it
            _remove(self._renamed)
            self._renamed = None
        _remove(self.index_dir / _POINTER_TMP)
        self._release()
        if self._created:  # a first build that failed leaves no index_dir behind, as if it never ran
            with contextlib.suppress(OSError):
                (self.index_dir / LOCK).unlink()
                self.index_dir.rmdir()  # only if empty: nothing else was put there meanwhile

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.truncate(0)  # no stale pid for the next writer to report
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None
            _HOLDING.discard(self)

    def __enter__(self) -> IndexBuild:
        return self.start()

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        self.abort()  # a no-op after commit


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _drop_inherited_locks() -> None:
    """A forked child (a DataLoader worker) closes its copy of the lock: the build's lock then ends with the build's
    process, not with the last of its children."""
    for build in list(_HOLDING):
        if build._lock is not None:
            build._lock.close()
            build._lock = None
    _HOLDING.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


def _refuse_other_files(index_dir: Path) -> None:
    """A build replaces what ``index_dir`` holds: refuse a directory that holds something other than an index."""
    if not index_dir.is_dir() or (index_dir / MANIFEST).is_file() or (index_dir / POINTER).exists():
        return
    other = sorted(p.name for p in index_dir.iterdir() if p.name not in _OURS and not _VERSION.fullmatch(p.name))
    if other:
        raise ConfigError(
            f"index_dir {index_dir} holds other files ({', '.join(other[:3])}, ...) and is not a boltir index: "
            "choose a new or empty directory."
        )


def _holder(lock: IO[str]) -> str:
    """The pid the lock's holder wrote; it writes it just after taking the lock, so wait a moment for it."""
    for _ in range(20):
        lock.seek(0)
        pid = lock.read().strip()
        if pid:
            return pid
        time.sleep(0.05)
    return "unknown"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _stranded(index_dir: Path) -> Path | None:
    """The old index that earlier boltir left in ``.name.*.old/index`` when killed between its two renames."""
    for old in sorted(index_dir.parent.glob(f".{index_dir.name}.*.old")):
        if (old / "index" / MANIFEST).is_file():
            return old / "index"
    return None


def _recover_two_rename_swap(index_dir: Path) -> None:
    """Put back an index stranded by the old two-rename swap, and drop the ``.name.*.tmp`` and ``.name.*.old``
    directories builds of that scheme left."""
    if not index_dir.parent.is_dir():
        return
    stranded = None if index_dir.exists() else _stranded(index_dir)
    if stranded is not None:
        with contextlib.suppress(OSError):  # another writer put it back first
            os.replace(stranded, index_dir)
    for leftover in [*index_dir.parent.glob(f".{index_dir.name}.*.old"), *index_dir.parent.glob(f".{index_dir.name}.*.tmp")]:
        if leftover.is_dir():
            _remove(leftover)


__all__ = ["MANIFEST", "POINTER", "IndexBuild", "read_live", "read_manifest", "resolve_index", "verify_index"]
