"""Atomic writes: the umask decides modes, a failed write names its file and leaves the old one, destinations
are checked before work."""

from __future__ import annotations

import os
import stat

import pytest

from boltir._io import atomic_dir, atomic_file, writable_dir
from boltir.errors import ConfigError, WriteError
from tests.faults import file_size_limit, unwritable_dir_check


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_files_and_directories_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        with atomic_file(tmp_path / "a.run") as handle:
            handle.write("q Q0 d 1 1.0 x\n")
        with atomic_dir(tmp_path / "model") as directory:
            (directory / "config.json").write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.run").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "model" / "config.json").stat().st_mode) == file_mode


def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path):
    (tmp_path / "a.run").write_text("old\n")
    with file_size_limit(1024), pytest.raises(WriteError) as failure, atomic_file(tmp_path / "a.run") as handle:
        handle.write("x" * 4096)
        handle.flush()
    assert str(failure.value) == f"could not write {tmp_path / 'a.run'}: File too large; nothing was written under that name."
    assert (tmp_path / "a.run").read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["a.run"]


def test_destinations_are_checked_before_work(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^run_dir .*/file/runs cannot be written \(Not a directory\): choose a writable directory\.$"):
        writable_dir(tmp_path / "file" / "runs", "run_dir")
    message = unwritable_dir_check(lambda parent: writable_dir(parent / "runs", "run_dir"))
    assert message.startswith("ConfigError: run_dir ") and "cannot be written (Permission denied)" in message
    assert writable_dir(tmp_path / "new" / "runs", "run_dir").is_dir() and not list((tmp_path / "new" / "runs").iterdir())
