"""A private, system-bus-like dbus-daemon for tests and the simulated home.

bleak talks to BlueZ over the D-Bus *system* bus, which it finds through
dbus-fast: ``DBUS_SYSTEM_BUS_ADDRESS`` if set, else
``unix:path=/var/run/dbus/system_bus_socket``. Starting our own daemon and
pointing that variable at it lets the hub's real bleak code talk to
``hil.sim.bluez.BlueZDouble`` instead of a real bluetoothd, without touching
the machine's real system bus or its bluetoothd.

    with PrivateSystemBus() as bus:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        ...

The daemon needs Debian's ``dbus-daemon`` package (``/usr/bin/dbus-daemon``).
The bus config is permissive (any local user may connect, own any name and
call anything) because it exists only for one test or one demo run; it uses
EXTERNAL auth over a unix socket like the real system bus, and no service
activation. Cleanup: ``stop()``/context exit, a ``weakref.finalize`` that
runs at interpreter exit, and (Linux PR_SET_PDEATHSIG) the kernel sending
SIGTERM to the daemon when the thread that started it dies, so a SIGKILLed
test run leaves no daemon behind; its temp dir is swept by a later start.
Start the bus from a thread that lives as long as the bus (the main thread).
"""

from __future__ import annotations

import ctypes
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

DEBIAN_PACKAGE = "dbus-daemon"

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


class DBusDaemonMissing(RuntimeError):
    """dbus-daemon is not installed."""


def find_dbus_daemon() -> str:
    path = shutil.which("dbus-daemon") or (
        "/usr/bin/dbus-daemon" if os.access("/usr/bin/dbus-daemon", os.X_OK) else None
    )
    if path is None:
        raise DBusDaemonMissing(
            "dbus-daemon not found; install it with: "
            f"apt-get install --no-install-recommends {DEBIAN_PACKAGE}"
        )
    return path


def _sweep_stale_dirs() -> None:
    """Remove temp dirs of daemons that died with a SIGKILLed owner (nobody listens any more).
    Only dirs older than a minute: a younger one may belong to a daemon still starting."""
    for d in Path(tempfile.gettempdir()).glob("carebeacon-dbus-*"):
        sock = d / "system_bus_socket"
        try:
            if time.time() - d.stat().st_mtime < 60:
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(sock))
        except OSError:
            shutil.rmtree(d, ignore_errors=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _cleanup(proc: subprocess.Popen[bytes], tmpdir: str) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=2)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    shutil.rmtree(tmpdir, ignore_errors=True)


class PrivateSystemBus:
    """One private dbus-daemon. ``address`` is the value for DBUS_SYSTEM_BUS_ADDRESS."""

    def __init__(self, *, ready_timeout_s: float = 5.0, die_with_parent: bool = True) -> None:
        self.ready_timeout_s = ready_timeout_s
        self.die_with_parent = die_with_parent
        self.address: str = ""
        self.socket_path: Path | None = None
        self.startup_s: float = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    def start(self) -> str:
        if self._proc is not None:
            return self.address
        daemon = find_dbus_daemon()
        _sweep_stale_dirs()
        tmpdir = tempfile.mkdtemp(prefix="carebeacon-dbus-")
        self.socket_path = Path(tmpdir) / "system_bus_socket"
        config = Path(tmpdir) / "system.conf"
        config.write_text(_CONFIG.format(socket=self.socket_path))
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                daemon,
                f"--config-file={config}",
                "--nofork",
                "--nopidfile",
                "--nosyslog",
                "--print-address=1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _cleanup, proc, tmpdir)
        try:
            line = self._read_address_line(proc)
        except BaseException:
            self.stop()
            raise
        self.address = line
        self.startup_s = time.monotonic() - started
        return self.address

    def _read_address_line(self, proc: subprocess.Popen[bytes]) -> str:
        """dbus-daemon prints its address only once it is listening: that is the ready signal."""
        assert proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout_s
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"dbus-daemon not ready after {self.ready_timeout_s} s")
                if not sel.select(remaining):
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"dbus-daemon exited ({proc.wait()}): {err.strip()}")
                buf += chunk
        address = buf.split(b"\n", 1)[0].decode().strip()
        if not address.startswith("unix:"):
            raise RuntimeError(f"unexpected dbus-daemon address {address!r}")
        return address

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # idempotent: terminate, wait, remove the temp dir
        self._proc = None
        self._finalizer = None

    def env(self) -> dict[str, str]:
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def __enter__(self) -> PrivateSystemBus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
