"""Faults for tests, injected for real: a directory the process may not write (root writes anywhere, so as root
the attempt runs in a forked child that dropped to the user ``nobody``), and a file size limit that makes the
kernel refuse writes past it (RLIMIT_FSIZE: a full disk at a chosen size)."""

from __future__ import annotations

import builtins
import contextlib
import io
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from boltir.callbacks import IndexCallback
from boltir.cli import main

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


# -- SIGKILL or SIGSTOP at a chosen step of a real `boltir index` -----------------------------------------------
# A child process runs the CLI's main() with every file-system change under one directory counted as a step
# (mkdir, open for writing, rename/replace, unlink, rmdir, and each file an rmtree removes) and each document
# batch as one more. Before step N it kills itself with SIGKILL (or stops with SIGSTOP): a deterministic point,
# whatever the implementation does between its renames. The children fork from a server that has imported boltir
# once (multiprocessing's forkserver), so each costs a CLI run, not an interpreter start.

def _short(arg: object) -> str:
    return os.path.basename(os.fspath(arg)) if isinstance(arg, (str, os.PathLike)) else repr(arg)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def cli_in_child(argv: list[str], watch: str, log: str, kill_at: int = 0, stop_at: int | str = 0, steps_file: str = "") -> None:
    """The child's body: run ``boltir`` with ``argv``, its output in ``log``; exit code as the CLI's.

    ``kill_at=N``: SIGKILL before step N; ``stop_at=N`` (or ``"batch"``, the first document batch): SIGSTOP there,
    after writing ``LOG.stopped``; ``steps_file``: gets one line per step, naming it.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(fd, "w", buffering=1, closefd=False)
    steps = [0]
    in_rmtree = [False]
    stop = [False]

    def step(where: str) -> None:
        steps[0] += 1
        if steps_file:
            with open(steps_file, "a", encoding="utf-8") as record:
                record.write(f"{where}\n")
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if not stop[0] and (steps[0] == stop_at or (stop_at == "batch" and where == "batch")):
            stop[0] = True
            Path(log + ".stopped").write_text(where)
            os.kill(os.getpid(), signal.SIGSTOP)

    def watched(path: object) -> bool:
        if not isinstance(path, (str, os.PathLike)):
            return False
        path = os.path.abspath(os.fspath(path))
        return path == watch or path.startswith(watch + os.sep)

    def counting(function, writes: Callable[..., bool]):
        def wrapper(*args, **kwargs):
            if writes(*args, **kwargs):
                step(f"{function.__name__}({', '.join(_short(a) for a in args[:2])})")
            return function(*args, **kwargs)

        return wrapper

    def any_path(*args, **kwargs) -> bool:
        return any(watched(a) for a in args[:2]) or (in_rmtree[0] and "dir_fd" in kwargs)

    def opens_for_writing(file, mode="r", *args, **kwargs) -> bool:
        return watched(file) and any(c in mode for c in "wax+")

    def os_opens_for_writing(path, flags, *args, **kwargs) -> bool:
        return watched(path) and bool(flags & _WRITE_FLAGS)

    rmtree = shutil.rmtree

    def counted_rmtree(path, *args, **kwargs):
        if not watched(path):
            return rmtree(path, *args, **kwargs)
        in_rmtree[0] = True
        try:
            return rmtree(path, *args, **kwargs)
        finally:
            in_rmtree[0] = False

    for name in ("replace", "rename", "unlink", "remove", "rmdir", "mkdir"):
        setattr(os, name, counting(getattr(os, name), any_path))
    os.open = counting(os.open, os_opens_for_writing)
    builtins.open = io.open = counting(io.open, opens_for_writing)
    shutil.rmtree = counted_rmtree
    batch_end = IndexCallback.on_predict_batch_end

    def counted_batch_end(self, *args, **kwargs):
        step("batch")
        return batch_end(self, *args, **kwargs)

    IndexCallback.on_predict_batch_end = counted_batch_end
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    os._exit(code)


_SERVER = multiprocessing.get_context("forkserver")


def start_cli(argv: list[str], watch: Path, log: Path, **faults: object) -> multiprocessing.process.BaseProcess:
    """``boltir ARGV`` in a child, with the faults of :func:`cli_in_child` (kill_at, stop_at, steps_file)."""
    _SERVER.set_forkserver_preload([__name__])  # boltir imported once, by the server (a no-op once it runs)
    process = _SERVER.Process(target=cli_in_child, args=(argv, str(Path(watch).absolute()), str(log)), kwargs=faults)
    process.start()
    return process


def run_cli(argv: list[str], watch: Path, log: Path, timeout: float = 120, **faults: object) -> int:
    """Run :func:`start_cli` to its end; its exit code (``-9`` when SIGKILL ended it)."""
    process = start_cli(argv, watch, log, **faults)
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        raise TimeoutError(f"boltir {' '.join(argv)} did not end within {timeout} s; its output: {Path(log).read_text()}")
    return process.exitcode
