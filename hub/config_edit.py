"""Editing hub.toml and the secrets file for `device add` / `device remove` (and the installer).

Every edit is built in memory, checked against the TOML structure (the parsed result must be the
old one plus or minus exactly the one device or key), encoded as strict UTF-8, and only then
written: each file through a temporary file in its own directory that gets the old file's owner,
group and mode, is fsync'ed and renamed over the old one (then the directory is fsync'ed). A
new secrets file is owned by the hub's user (`carebeacon`, or $CAREBEACON_HUB_USER) when run as
root, mode 0600 (docs/install-hub.md). If anything fails, a write or the check that the result
loads, every file already replaced is put back.

Edits hold a lock on hub.toml from the first read to the last write (`locked`): two at once (two
`device add`s, the installer's provision) run one after the other. `commit` also refuses files
that changed since the edit read them (an editor that took no lock: a text editor, an old CLI).
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import re
import stat
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

from hub import atomic_file, config as C

HUB_USER_ENV = C.HUB_USER_ENV  # the unit's User=; the owner of a new secrets file


class NotWritable(C.AccessError):
    """The files cannot be replaced as this user (the CLI then says what to run instead)."""


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def read_text(path: Path) -> str:
    """A TOML file's text (TOML is UTF-8, whatever the terminal's locale)."""
    try:
        return path.read_bytes().decode("utf-8")
    except PermissionError:
        raise C.AccessError(f"{path}: permission denied") from None
    except UnicodeDecodeError as e:
        raise C.ConfigError(f"{path}: not UTF-8 (byte {e.start}): TOML files are UTF-8") from None


def command_line_text(name: str, value: str) -> str:
    """A text from the command line as it goes into a TOML file (UTF-8): bytes the locale could
    not decode are taken as UTF-8 if they are; anything else is refused, naming the argument."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        raw = os.fsencode(value)  # the bytes as typed (argv is decoded with surrogateescape)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise C.ConfigError(f"{name}: {raw!r} is not UTF-8 text (a terminal set to another "
                            "encoding?); set the terminal to UTF-8 and type it again") from None


def secrets_path(cfg_path: Path, secrets_file: str | Path | None = None) -> Path:
    """The secrets file of a hub.toml, as hub.config.load finds it."""
    if secrets_file:
        return C.secrets_path(cfg_path, secrets_file)
    try:
        setting = tomllib.loads(read_text(cfg_path)).get("secrets_file", "secrets.toml")
    except tomllib.TOMLDecodeError as e:
        raise C.ConfigError(f"{cfg_path}: not valid TOML: {e}") from None
    return C.secrets_path(cfg_path, None, str(setting))


# -- one edit at a time -------------------------------------------------------------------
LOCK_WAIT_S = 30.0  # an edit takes well under a second: longer is a stuck one (Ctrl-Z?)


@contextlib.contextmanager
def locked(cfg_path: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold an exclusive flock across a read-modify-write (released when the process ends,
    however) on the folder that holds hub.toml (its real path): never replaced, unlike the
    files an edit renames into place, and nothing new in /etc/carebeacon (no lock file, no
    owner to get right). Locking hub.toml itself let a command that took the lock on the file
    just renamed into place edit while the first was still writing the secrets file: the
    first's rollback then dropped the second's device, which had been reported added."""
    real, deadline, said = _real(cfg_path), time.monotonic() + wait_s, False
    if not real.exists():
        raise C.ConfigError(f"{cfg_path}: file not found")
    try:
        fd = os.open(real.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        raise C.AccessError(f"{cfg_path}: permission denied") from None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise C.ConfigError(
                        f"{cfg_path}: another command (device add or remove, the installer) "
                        f"has been editing it for {wait_s:.0f} s: nothing was changed; run "
                        "this again once it is done") from None
                if not said:
                    print(f"{cfg_path}: waiting for another command editing it (device add "
                          "or remove, the installer) ...", file=sys.stderr, flush=True)
                    said = True
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


# -- the text edits, checked against the parsed structure -----------------------------------
def device_block(dev: C.Device) -> str:
    def q(s: str) -> str:  # a TOML basic string: JSON's, with DEL escaped too
        return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")
    return (f"\n[[devices]]\nid = {q(dev.hex)}\nkind = {q(dev.kind)}\nroom = {q(dev.room)}\n"
            f"location = {q(dev.location)}\nelder = {q(dev.elder)}\n"
            f"heartbeat_min = {dev.heartbeat_min}\n"
            f"entrance = {'true' if dev.entrance else 'false'}\n")


def _parse(path: Path, text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise C.ConfigError(f"{path}: not valid TOML: {e}") from None


def _same_or_refuse(path: Path, new_text: str, expected: dict, what: str) -> str:
    try:
        ok = tomllib.loads(new_text) == expected
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        raise C.ConfigError(f"{path}: cannot {what} without changing anything else in the file "
                            "(unusual layout); nothing was changed: edit the file by hand")
    return new_text


def _devices_without(data: dict, hexid: str) -> dict:
    devs = [d for d in data.get("devices", [])
            if not (isinstance(d, dict) and str(d.get("id", "")).lower() == hexid)]
    out = {k: v for k, v in data.items() if k != "devices"}
    if devs:
        out["devices"] = devs
    return out


def _top_lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) of each line that starts outside any multi-line string, array or inline
    table: only such a line can be a table header or a comment of the file's layout."""
    tops: list[tuple[int, str]] = []
    i, n, depth, ml = 0, len(text), 0, ""
    while i < n:
        if not ml and depth == 0 and (i == 0 or text[i - 1] == "\n"):
            end = text.find("\n", i)
            end = n if end < 0 else end + 1
            tops.append((i, text[i:end]))
            if text[i:end].lstrip(" \t").startswith("["):  # a header: one line, no values
                i = end
                continue
        c = text[i]
        if ml:
            if text.startswith(ml, i):
                i += 3
                extra = 0
                while i < n and text[i] == ml[0] and extra < 2:  # """"" ends with quotes
                    i, extra = i + 1, extra + 1
                ml = ""
            else:
                i += 2 if ml == '"""' and c == "\\" else 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith('"""', i) or text.startswith("'''", i):
            ml, i = text[i:i + 3], i + 3
        elif c in "\"'":
            i += 1
            while i < n and text[i] not in (c, "\n"):
                i += 2 if c == '"' and text[i] == "\\" else 1
            i += 1
        else:
            depth += (c in "[{") - (c in "]}")
            depth = max(depth, 0)
            i += 1
    return tops


def _is_comment(line: str) -> bool:
    return line.lstrip(" \t").startswith("#")


def _header(line: str) -> str:
    return re.sub(r"\s+", "", line.split("#", 1)[0])


def removed_device_text(path: Path, text: str, hexid: str) -> str | None:
    """hub.toml's text without device `hexid` (its [[devices]] table, from the comment lines
    right above it to the next table's own comment lines); None if there is no such device."""
    hexid = hexid.lower()
    old = _parse(path, text)
    expected = _devices_without(old, hexid)
    if expected == old:
        return None
    tops = _top_lines(text)
    heads = [k for k, (_o, line) in enumerate(tops) if line.lstrip(" \t").startswith("[")]

    def start(k: int) -> int:  # a table starts with the comment lines glued above its header
        while k > 0 and _is_comment(tops[k - 1][1]) and \
                tops[k - 1][0] + len(tops[k - 1][1]) == tops[k][0]:
            k -= 1
        return tops[k][0]

    for a, k in enumerate(heads):
        if _header(tops[k][1]) != "[[devices]]":
            continue
        nxt = [h for h in heads[a + 1:] if not _header(tops[h][1]).lstrip("[").startswith(
            "devices.")]  # a sub-table of this device belongs to it
        lo, hi = start(k), (start(nxt[0]) if nxt else len(text))
        try:
            block = tomllib.loads(text[tops[k][0]:hi])["devices"][0]
        except (tomllib.TOMLDecodeError, KeyError, IndexError, TypeError):
            continue
        if str(block.get("id", "")).lower() == hexid:
            return _same_or_refuse(path, text[:lo] + text[hi:], expected,
                                   f"remove device {hexid}")
    raise C.ConfigError(f"{path}: device {hexid} is not written as a [[devices]] table; "
                        "nothing was changed: edit the file by hand")


def added_device_text(path: Path, text: str, dev: C.Device) -> str:
    old = _parse(path, text)
    if any(isinstance(d, dict) and str(d.get("id", "")).lower() == dev.hex
           for d in old.get("devices", [])):  # as read under the lock: added meanwhile?
        raise C.ConfigError(f"{path}: device {dev.hex} is already configured")
    new = text.rstrip("\n") + "\n" + device_block(dev)
    block = tomllib.loads(device_block(dev))["devices"]
    expected = {**old, "devices": [*old.get("devices", []), *block]}
    return _same_or_refuse(path, new, expected, f"add device {dev.hex}")


def added_key_text(path: Path, text: str | None, hexid: str, key: str) -> str:
    text = "[keys]\n" if text is None else text
    old = _parse(path, text)
    if any(str(k).lower() == hexid for k in old.get("keys", {})):  # left over: replace it
        text = removed_key_text(path, text, hexid)
        old = _parse(path, text)
    new = text if "[keys]" in text else text.rstrip("\n") + "\n\n[keys]\n"
    new = new.rstrip("\n") + f'\n"{hexid}" = "{key}"\n'
    keys = old.get("keys", {})
    expected = {**old, "keys": {**(keys if isinstance(keys, dict) else {}), hexid: key}}
    return _same_or_refuse(path, new, expected, f"add the key of {hexid}")


def removed_key_text(path: Path, text: str, hexid: str) -> str:
    old = _parse(path, text)
    keys = old.get("keys", {})
    keys = {k: v for k, v in keys.items() if k.lower() != hexid} if isinstance(keys, dict) else keys
    hexid = re.escape(hexid)
    new = re.sub(rf"""(?mi)^[ \t]*["']?{hexid}["']?[ \t]*=.*(\n|$)""", "", text)
    return _same_or_refuse(path, new, {**old, "keys": keys}, f"remove the key of {hexid}")


# -- writing: atomic, owner and mode kept, all or nothing -----------------------------------
def _new_owner(private: bool) -> tuple[int, int, int]:
    """Owner, group and mode of a file that does not exist yet (docs/install-hub.md)."""
    if not private:
        return (os.geteuid(), os.getegid(), 0o644)
    if os.geteuid() != 0:
        return (os.geteuid(), os.getegid(), 0o600)  # `sudo -u carebeacon`: the hub's own
    name = os.environ.get(HUB_USER_ENV) or "carebeacon"
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        print(f"warning: no user {name!r} (the hub's, set {HUB_USER_ENV} if it is another): "
              "the new secrets file stays owned by root; chown it to the user the hub runs as",
              file=sys.stderr)
        return (0, os.getegid(), 0o600)
    return (pw.pw_uid, pw.pw_gid, 0o600)


def _can_chown(uid: int, gid: int) -> bool:
    return os.geteuid() == 0 or (uid == os.geteuid() and gid in {os.getegid(), *os.getgroups()})


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))  # replace a symlink's target, not the link


def _check_writable(path: Path, st: os.stat_result | None) -> None:
    real, me = _real(path), _user(os.geteuid())
    if not os.access(real.parent, os.W_OK | os.X_OK):
        why = ("(a read-only file system?)" if os.geteuid() == 0
               else f"by user {me}: run the command as root (sudo); the files keep their owner"
                    " and mode")
        raise NotWritable(f"cannot write {path}: its directory {real.parent} is not writable "
                          f"{why}")
    if st is not None and not _can_chown(st.st_uid, st.st_gid):
        raise NotWritable(f"cannot write {path}: it is owned by {_user(st.st_uid)}:"
                          f"{_group(st.st_gid)}, which user {me} cannot keep: run the command as "
                          "root (sudo)")


def _fsync_dir(d: Path) -> None:
    # Raised: the command (or the installer) says the edit is done only once it is on disk; a
    # directory that cannot be synced is a failed write, rolled back and reported.
    atomic_file.fsync_dir(d, ignore_errors=False)


def _like(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))


def replace(path: Path, data: bytes, owner: tuple[int, int, int]) -> Path:
    """Put `data` in `path` (a symlink's target) atomically, owned (uid, gid, mode) = `owner`
    (hub/atomic_file.py). Returns the directory, to fsync once the rename is accounted for."""
    return atomic_file.write(_real(path), data, owner=owner, fsync=True)


def commit(changes: list[tuple[Path, str, bool, str | None]], check: Callable[[], object]) -> None:
    """Write each (path, text, private, was) in order, then run check(); on any failure put every
    file back as it was and raise ConfigError (KeyboardInterrupt and the like are re-raised).
    `was`: the text the new one was made from (None: no file), refused if the file is no longer
    that: writing would drop what was changed meanwhile."""
    blobs = []
    for path, text, private, _was in changes:
        try:
            blobs.append((path, text.encode("utf-8"), private))
        except UnicodeEncodeError as e:
            raise C.ConfigError(f"{path}: the new text is not UTF-8 ({e.reason}); "
                                "nothing was changed") from None
    olds: list[tuple[bytes, os.stat_result] | None] = []
    for (path, _b, _p), (_path, _t, _private, was) in zip(blobs, changes, strict=True):
        try:
            olds.append((path.read_bytes(), _real(path).stat()))
        except FileNotFoundError:
            olds.append(None)
        except PermissionError:
            raise C.AccessError(f"{path}: permission denied") from None
        old = olds[-1]
        if (None if old is None else old[0]) != (None if was is None else was.encode("utf-8")):
            raise C.ConfigError(f"{path} changed while this command ran (another device add?): "
                                "nothing was changed; run it again")
        _check_writable(path, None if old is None else old[1])
    done: list[int] = []
    at: Path | None = blobs[0][0] if blobs else None
    try:
        for k, (path, data, private) in enumerate(blobs):
            at, old = path, olds[k]
            d = replace(path, data, _like(old[1]) if old else _new_owner(private))
            done.append(k)
            _fsync_dir(d)
        at = None
        check()
    except BaseException as e:
        left = _roll_back([(blobs[k][0], olds[k]) for k in reversed(done)])
        if not isinstance(e, Exception):  # KeyboardInterrupt and the like: files put back
            raise
        note = (" and could not put back " + "; ".join(left) + ": check them by hand"
                if left else "; nothing was changed")
        if isinstance(e, C.ConfigError):
            raise type(e)(f"{e}{note}") from e
        if isinstance(e, OSError):
            cls = NotWritable if isinstance(e, PermissionError) else C.ConfigError
            raise cls(f"cannot write {at or e.filename}: {e.strerror or e}{note}"
                                ) from e
        raise


def _roll_back(done: list[tuple[Path, tuple[bytes, os.stat_result] | None]]) -> list[str]:
    left = []
    for path, old in done:
        try:
            if old is None:
                _real(path).unlink(missing_ok=True)
            else:
                _fsync_dir(replace(path, old[0], _like(old[1])))
        except OSError as e:
            left.append(f"{path} ({e.strerror or e})")
    return left
