"""Replacing a file atomically: readers see the old file or the new one, never a part of it.

`write` puts the data in a temporary file beside the target (same directory, so the rename
cannot cross file systems), optionally fsyncs it and renames it over the target. The rename is
durable only once the directory is fsync'ed too: `fsync_dir(write(...), ignore_errors=...)`.
That is left to the caller so that it can first note that the file was replaced (config_edit
puts back what it replaced when a later step fails, a failed directory fsync included).

Users: hub/config_edit.py (hub.toml, the secrets file), hub/daemon.py (status.json),
hub/store_schema.py (the directory of a new store), tools/installer/records.py (visit records).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def fsync_dir(directory: str | os.PathLike[str], *, ignore_errors: bool) -> None:
    """Make the directory's entries (a rename, a new file) durable. Each caller says whether an
    error is raised or ignored: what a failure means differs (see the callers)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not ignore_errors:
            raise


def write(path: str | os.PathLike[str], data: bytes | str, *,
          owner: tuple[int, int, int] | None = None, fsync: bool = True) -> Path:
    """Replace `path` with `data` (text is written as UTF-8) through a temporary file
    `.<name>.<random>.tmp` in its directory, removed again if anything fails. Returns the
    directory, for `fsync_dir`. A symlink at `path` is replaced by the file: pass the resolved
    path to write the link's target.

    owner: (uid, gid, mode) for the new file; the temporary file is created 0600 and given
    them before any data goes in. None: the process's, and mode 0666 less the umask, as any
    new file.
    fsync: fsync the data before the rename (else a crash can leave an empty or partial file).
    """
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _create_temp(path, 0o666 if owner is None else 0o600)
    try:
        try:
            if owner is not None:
                uid, gid, mode = owner
                st = os.fstat(fd)
                if (st.st_uid, st.st_gid) != (uid, gid):
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path.parent


def _create_temp(path: Path, mode: int) -> tuple[int, Path]:
    """A new file beside `path`, opened for writing (O_EXCL: never one that exists already,
    nor a symlink planted there); `mode` is subject to the umask as any file's is."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for a temporary file beside {path}")
