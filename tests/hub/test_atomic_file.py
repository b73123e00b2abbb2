"""hub/atomic_file.py: a file is replaced whole or not at all, with no temporary file left
behind, the new file's owner and mode as asked; a directory fsync raises or not as asked."""

from __future__ import annotations

import os
import stat

import pytest

from hub import atomic_file


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    (tmp_path / "a.json").write_text("old")
    assert atomic_file.write(tmp_path / "a.json", "Küche\n") == tmp_path
    assert (tmp_path / "a.json").read_bytes() == "Küche\n".encode()
    atomic_file.write(tmp_path / "b.bin", b"\x00\xff", fsync=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"


def test_without_an_owner_a_new_file_gets_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_file.write(tmp_path / "status.json", "{}")
    finally:
        os.umask(old)
    assert mode(tmp_path / "status.json") == 0o640


def test_with_an_owner_the_file_gets_that_owner_and_mode(tmp_path):
    (tmp_path / "secrets.toml").write_text("old")
    os.chmod(tmp_path / "secrets.toml", 0o644)
    atomic_file.write(tmp_path / "secrets.toml", b"new", owner=(os.getuid(), os.getgid(), 0o600))
    st = os.stat(tmp_path / "secrets.toml")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (os.getuid(), os.getgid(), 0o600)


@pytest.mark.parametrize("fsync", [True, False])
def test_the_data_is_fsynced_only_when_asked(tmp_path, monkeypatch, fsync):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    atomic_file.write(tmp_path / "f", "x", fsync=fsync)
    assert len(calls) == (1 if fsync else 0)


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    (tmp_path / "target").mkdir()  # the rename over a directory fails
    with pytest.raises(IsADirectoryError):
        atomic_file.write(tmp_path / "target", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


def test_a_symlink_is_replaced_not_followed(tmp_path):
    (tmp_path / "real").write_text("old")
    (tmp_path / "link").symlink_to("real")
    atomic_file.write(tmp_path / "link", "new")
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "real").read_text() == "old"


def test_fsync_dir_raises_or_ignores_errors_as_asked(tmp_path):
    atomic_file.fsync_dir(tmp_path, ignore_errors=False)
    (tmp_path / "file").write_text("")
    for bad in (tmp_path / "missing", tmp_path / "file"):
        atomic_file.fsync_dir(bad, ignore_errors=True)
        with pytest.raises(OSError):
            atomic_file.fsync_dir(bad, ignore_errors=False)
