"""A board's MicroPython, through mpremote's own transport (the raw REPL over USB serial).

mpremote's SerialTransport is used as a library (the code its `fs cp`, `fs sha256sum`,
`fs ls`, `fs rm` and `reset` commands run), so one connection serves a whole deploy: one
soft reset on connect instead of one per command. Every error comes back as an
InstallerError in plain words.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import time
from collections.abc import Callable

from tools.installer import errors as E, ports


class Device:
    def __init__(self, port: str, *, timeout: float = 10.0, safe_boot_hint: str = ""):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        ports.check_port(port)
        self.port, self.hint = port, safe_boot_hint
        try:
            self.t = SerialTransport(port, baudrate=115200)
        except (TransportError, OSError) as e:
            raise E.from_mpremote(port, e, safe_boot_hint) from e
        # mpremote reads a pseudo-terminal with blocking single-byte reads: without a read
        # timeout a silent board (its app asleep) would hang it for ever, not time out.
        self.t.serial.timeout = 0.5
        for attempt in (1, 2):
            try:
                self.t.enter_raw_repl(soft_reset=True, timeout_overall=min(timeout, 2.0)
                                      if attempt == 1 else timeout)
                break
            except (TransportError, OSError) as e:
                if attempt == 2 or isinstance(e, OSError):
                    self.close()
                    raise E.from_mpremote(port, e, safe_boot_hint) from e
                # A board still booting (just reset or flashed) loses what it is sent while
                # it reboots: give it a moment and ask once more.
                time.sleep(1.0)

    def close(self) -> None:
        t = getattr(self, "t", None)
        if t is not None:
            with contextlib.suppress(Exception):
                t.close()
            self.t = None

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, e: BaseException) -> E.InstallerError:
        return E.from_mpremote(self.port, e, self.hint)

    # -- code -----------------------------------------------------------------------------
    def exec(self, code: str) -> str:
        from mpremote.transport import TransportError, TransportExecError

        try:
            return self.t.exec(code).decode("utf-8", "replace")
        except TransportExecError as e:
            raise E.InstallerError("board-error", "The board reported an error.",
                                   "run again with --verbose and keep the output for support",
                                   e.error_output) from e
        except (TransportError, OSError) as e:
            raise self._fail(e) from e

    def eval(self, expr: str):
        return ast.literal_eval(self.exec(f"print(repr({expr}))").strip())

    def info(self) -> dict:
        impl = self.eval("(__import__('sys').implementation.version, "
                         "__import__('sys').implementation._mpy, __import__('sys').platform)")
        version, mpy, platform = impl
        text = ".".join(str(v) for v in version[:3])
        return {"micropython": text, "mpy": mpy, "platform": platform}

    def missing(self, modules: list[str]) -> list[str]:
        code = ("for m in %r:\n try:\n  __import__(m)\n except ImportError:\n  print(m)"
                % sorted(modules))
        return self.exec(code).split()

    # -- files ----------------------------------------------------------------------------
    def tree(self, top: str) -> dict[str, int]:
        """{path: size} of every file under top (relative, no leading /); {} if absent."""
        out: dict[str, int] = {}
        try:
            entries = self.t.fs_listdir(top)
        except OSError:
            return out
        except Exception as e:  # noqa: BLE001  (TransportError)
            raise self._fail(e) from e
        for ent in entries:
            path = f"{top}/{ent.name}"
            if ent.st_mode & 0x4000:
                out.update(self.tree(path))
            else:
                out[path] = ent.st_size
        return out

    def mkdirs(self, dest: str, made: set[str]) -> None:
        parts = dest.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d in made:
                continue
            try:
                self.t.fs_mkdir(d)
            except OSError:
                pass  # EEXIST: already there
            made.add(d)

    def sha256(self, path: str) -> str | None:
        try:
            return self.t.fs_hashfile(path, "sha256").hex()
        except OSError:
            return None
        except Exception as e:  # noqa: BLE001
            raise self._fail(e) from e

    def write(self, path: str, data: bytes, progress: Callable[[int], None] | None = None,
              ) -> None:
        def cb(done: int, _total: int) -> None:
            if progress is not None:
                progress(done)

        try:
            self.t.fs_writefile(path, data, progress_callback=cb)
        except Exception as e:  # noqa: BLE001
            raise self._fail(e) from e

    def remove(self, path: str) -> None:
        try:
            self.t.fs_rmfile(path)
        except Exception as e:  # noqa: BLE001
            raise self._fail(e) from e

    def read(self, path: str) -> bytes | None:
        try:
            return bytes(self.t.fs_readfile(path))
        except OSError:
            return None

    def write_verified(self, path: str, data: bytes) -> str:
        """Write a file and prove by hash that the board holds exactly these bytes."""
        self.write(path, data)
        want = hashlib.sha256(data).hexdigest()
        got = self.sha256(path)
        if got != want:
            raise E.InstallerError("verify-failed", f"{path} on the board is not what was sent.",
                                   "run the command again; if it repeats, try another cable",
                                   f"sha256 sent {want}, on the board {got}")
        return want

    def reset(self) -> None:
        """Hard reset (machine.reset()), as `mpremote reset` does; the link is closed."""
        with contextlib.suppress(Exception):
            self.t.exec_raw_no_follow("import time, machine\ntime.sleep_ms(100)\nmachine.reset()")
        self.close()
