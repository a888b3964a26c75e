"""The index write protocol: versions + one pointer, a lock, cleanup of killed builds, sizes and hashes, umask."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from boltir.cli import verify
from boltir.errors import ConfigError, IndexLockedError, IndexMismatchError, WriteError
from boltir.index import FaissIndexConfig, TorchIndexConfig, open_searcher
from boltir.index.storage import LOCK, POINTER, STAGING, IndexBuild, read_live, read_manifest, resolve_index, verify_index

from tests.faults import file_size_limit, unwritable_dir_check

from .stubs import StubModel


def _build(index_dir: Path, payload: bytes, **manifest) -> Path:
    with IndexBuild(index_dir) as build:
        (build.staging / "vectors.bin").write_bytes(payload)
        (build.staging / "sub").mkdir()
        (build.staging / "sub" / "ids.txt").write_text("a\nb\n")
        return build.commit({"count": 2, **manifest})


def test_rebuild_swaps_one_pointer_and_drops_the_old_version(tmp_path):
    first = _build(tmp_path / "idx", b"old")
    assert resolve_index(tmp_path / "idx") == first and (first / "vectors.bin").read_bytes() == b"old"
    second = _build(tmp_path / "idx", b"new!")
    assert (tmp_path / "idx" / POINTER).read_text().strip() == second.name != first.name
    assert not first.exists() and (resolve_index(tmp_path / "idx") / "vectors.bin").read_bytes() == b"new!"
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == sorted([LOCK, POINTER, second.name])


def test_manifest_records_size_and_sha256_of_every_file(tmp_path):
    version = _build(tmp_path / "idx", b"0123456789")
    files = read_manifest(tmp_path / "idx")["files"]
    assert set(files) == {"vectors.bin", "sub/ids.txt"}
    assert files["vectors.bin"] == {"size": 10, "sha256": hashlib.sha256(b"0123456789").hexdigest()}
    assert verify_index(tmp_path / "idx")["count"] == 2
    assert json.loads((version / "manifest.json").read_text())["files"] == files


def test_opening_checks_sizes_and_verify_checks_hashes(tmp_path, capsys):
    version = _build(tmp_path / "idx", b"0123456789")
    (version / "vectors.bin").write_bytes(b"0123456780")  # same size, one byte changed
    read_manifest(tmp_path / "idx")  # sizes match: opening stays cheap and accepts it
    with pytest.raises(IndexMismatchError, match=r"damaged: vectors\.bin \(SHA-256 differs"):
        verify_index(tmp_path / "idx")
    assert verify.main([str(tmp_path / "idx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vectors.bin" in err and "sub/ids.txt" not in err
    (version / "vectors.bin").write_bytes(b"01234")
    with pytest.raises(IndexMismatchError, match=r"damaged: vectors\.bin \(5 bytes, the manifest records 10\)"):
        read_manifest(tmp_path / "idx")
    (version / "sub" / "ids.txt").unlink()
    with pytest.raises(IndexMismatchError, match=r"sub/ids\.txt \(missing\)"):
        read_manifest(tmp_path / "idx")


def test_verify_command_reports_an_intact_index(tmp_path):
    _build(tmp_path / "idx", b"0123456789")
    done = subprocess.run([sys.executable, "-m", "boltir.cli", "verify", str(tmp_path / "idx")], capture_output=True, text=True)
    assert done.returncode == 0 and "2 files (14 bytes) match" in done.stdout


def test_verify_names_an_index_built_before_hashes(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "manifest.json").write_text(json.dumps({"count": 1}))
    with pytest.raises(IndexMismatchError, match="built before boltir recorded file hashes: rebuild it"):
        verify_index(tmp_path / "flat")


def test_second_writer_fails_at_once_naming_the_holder(tmp_path):
    _build(tmp_path / "idx", b"old")
    with IndexBuild(tmp_path / "idx") as build:
        (build.staging / "vectors.bin").write_bytes(b"half")
        with pytest.raises(IndexLockedError, match=rf"being built by another process \(pid {os.getpid()}\)"):
            IndexBuild(tmp_path / "idx").start()
        assert (build.staging / "vectors.bin").read_bytes() == b"half"  # the refused writer touched nothing
        build.commit({"count": 1})
    assert (resolve_index(tmp_path / "idx") / "vectors.bin").read_bytes() == b"half"
    assert (tmp_path / "idx" / LOCK).read_text() == ""  # no stale pid once the lock is free
    _build(tmp_path / "idx", b"free again")


def test_next_build_removes_what_killed_builds_left(tmp_path):
    live = _build(tmp_path / "idx", b"old")
    (tmp_path / "idx" / STAGING).mkdir()
    (tmp_path / "idx" / STAGING / "vectors.bin").write_bytes(b"half")  # killed while writing
    (tmp_path / "idx" / "v000042").mkdir()  # killed after its rename, before the pointer moved
    (tmp_path / "idx" / f".{POINTER}.tmp").write_text("v000042\n")
    assert resolve_index(tmp_path / "idx") == live
    with IndexBuild(tmp_path / "idx") as build:
        assert list(build.staging.iterdir()) == []
        assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == sorted([LOCK, POINTER, STAGING, live.name])
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == sorted([LOCK, POINTER, live.name])
    assert resolve_index(tmp_path / "idx") == live


def test_files_and_directories_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        version = _build(tmp_path / "idx", b"x")
    finally:
        os.umask(old)
    modes = {p.relative_to(version).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [version, *version.rglob("*")]}
    assert modes == {".": 0o750, "vectors.bin": 0o640, "sub": 0o750, "sub/ids.txt": 0o640, "manifest.json": 0o640}
    assert stat.S_IMODE((tmp_path / "idx" / POINTER).stat().st_mode) == 0o640


def test_unwritable_destination_fails_before_any_work(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"index_dir .*file/idx cannot be written \(Not a directory\)"):
        IndexBuild(tmp_path / "file" / "idx").start()
    message = unwritable_dir_check(lambda parent: IndexBuild(parent / "idx").start())
    assert message.startswith("ConfigError: index_dir ") and "cannot be written (Permission denied)" in message


def test_a_directory_of_other_files_is_not_replaced(tmp_path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "draft.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"holds other files \(draft\.tex, \.\.\.\) and is not a boltir index"):
        IndexBuild(tmp_path / "papers").start()
    assert [p.name for p in (tmp_path / "papers").iterdir()] == ["draft.tex"]


def test_an_index_written_before_versions_is_read_in_place_and_replaced(tmp_path):
    flat = tmp_path / "idx"
    flat.mkdir()
    (flat / "manifest.json").write_text(json.dumps({"count": 1}))
    (flat / "index.faiss").write_bytes(b"old")
    assert resolve_index(flat) == flat and read_manifest(flat) == {"count": 1}
    version = _build(flat, b"new")
    assert sorted(p.name for p in flat.iterdir()) == sorted([LOCK, POINTER, version.name])


def test_an_index_stranded_by_the_old_two_rename_swap_opens_and_is_restored(tmp_path):
    stranded = tmp_path / ".idx.abc123.old" / "index"
    stranded.mkdir(parents=True)
    (stranded / "manifest.json").write_text(json.dumps({"count": 7}))
    (tmp_path / ".idx.def456.tmp").mkdir()
    assert read_manifest(tmp_path / "idx") == {"count": 7}  # read where it was left, before any build
    build = IndexBuild(tmp_path / "idx").start()
    assert resolve_index(tmp_path / "idx") == tmp_path / "idx" and read_manifest(tmp_path / "idx") == {"count": 7}
    build.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_a_reader_follows_a_pointer_that_moves_while_it_reads(tmp_path):
    first = _build(tmp_path / "idx", b"old")
    seen = []

    def read(live: Path) -> bytes:
        seen.append(live.name)
        if len(seen) == 1:  # a rebuild swaps the pointer and removes this version mid-read
            _build(tmp_path / "idx", b"new")
        return (live / "vectors.bin").read_bytes()

    assert read_live(tmp_path / "idx", read) == b"new" and seen[0] == first.name != seen[1]
    with pytest.raises(FileNotFoundError):  # a failure with the pointer unmoved is the reader's own
        read_live(tmp_path / "idx", lambda live: (live / "absent").read_bytes())


@pytest.mark.parametrize("config", [TorchIndexConfig(), FaissIndexConfig()], ids=["exact", "faiss"])
def test_a_full_disk_mid_build_names_the_files_and_keeps_the_old_index(config, tmp_path):
    model = StubModel("dense", 32)
    old = config.indexer(tmp_path / "idx", model)
    old.add(["a", "b"], torch.eye(2, 32))
    old.finish()
    indexer = config.indexer(tmp_path / "idx", model)
    indexer.add([f"d{i}" for i in range(2000)], torch.randn(2000, 32))  # 256 KB of vectors
    with file_size_limit(64 * 1024), pytest.raises(WriteError) as failure:
        indexer.finish()
    message = str(failure.value)
    assert "\n" not in message and "File too large" in message
    assert f"index files in {tmp_path / 'idx' / STAGING}" in message and "is unchanged" in message
    assert open_searcher(tmp_path / "idx").search_arrays(torch.eye(1, 32), 1)[1] == [["a"]]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == sorted([LOCK, POINTER, "v000001"])
    config.indexer(tmp_path / "idx", model).abort()  # the lock was given back


def test_a_full_disk_at_the_manifest_names_it(tmp_path):
    _build(tmp_path / "idx", b"old")
    build = IndexBuild(tmp_path / "idx").start()
    (build.staging / "vectors.bin").write_bytes(b"new")
    with file_size_limit(64), pytest.raises(WriteError, match=r"could not write .*/\.staging/manifest\.json: File too large; the index at .* is unchanged\."):
        build.commit({"count": 2, "padding": "x" * 100})
    assert (resolve_index(tmp_path / "idx") / "vectors.bin").read_bytes() == b"old" and not build.active


def test_a_forked_child_does_not_keep_the_lock_of_its_parent(tmp_path):
    build = IndexBuild(tmp_path / "idx").start()
    read, write = os.pipe()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a DataLoader worker, say: it outlives the build's end here
        os.close(write)
        os.write(ready_write, b"r")  # fork's after-in-child hooks have run once fork returns here
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    os.read(ready_read, 1)  # the child is running (else the parent could race ahead of its hook)
    try:
        build.abort()
        IndexBuild(tmp_path / "idx").start().abort()  # free although the child still runs
    finally:
        os.close(write)
        os.waitpid(pid, 0)
