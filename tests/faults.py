"""Faults for tests, injected for real: a directory the process may not write (root writes anywhere, so as root
the attempt runs in a forked child that dropped to the user ``nobody``), and a file size limit that makes the
kernel refuse writes past it (RLIMIT_FSIZE: a full disk at a chosen size)."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

NOBODY = 65534


def unwritable_dir_check(attempt: Callable[[Path], object]) -> str:
    """``attempt(parent)`` with ``parent`` a read-only (0555) directory; the error it raised as ``"Type: message"``,
    or ``""`` when it raised none."""
    root = Path(tempfile.mkdtemp(prefix="boltir-unwritable-"))
    root.chmod(0o755)  # 'nobody' must reach the read-only directory inside
    parent = root / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.geteuid() != 0:
            return _outcome(attempt, parent)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: no pytest teardown, no flushing of the parent's buffers (os._exit)
            try:
                os.close(read)
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                os.write(write, _outcome(attempt, parent).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, encoding="utf-8") as answer:
            message = answer.read()
        os.waitpid(pid, 0)
        return message
    finally:
        parent.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


def _outcome(attempt: Callable[[Path], object], parent: Path) -> str:
    try:
        attempt(parent)
    except Exception as exc:  # reported to the test, which checks type and message
        return f"{type(exc).__name__}: {exc}"
    return ""


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes that would make any file larger than ``limit`` bytes fail with EFBIG ("File too large")."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel's default answer is to kill the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
