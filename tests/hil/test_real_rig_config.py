"""RealRig.from_config (hil/real/rig.py) and what a session refuses before any hardware.

Every config problem is RigUnavailable naming the file and the key (`rig.toml: dut.key:
...`), found before the hardware is looked at; the example config is valid and then stops
at the first thing this machine lacks, the DUT's serial port. With the port there (a real
pty), the next reason is the one this machine really has (no gpiod v2 bindings).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from hil.real.rig import RealRig, RigUnavailable, check_config, imu_line
from hil.rig import Unsupported

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "hil" / "real" / "rig.example.toml"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rig.toml"
    p.write_text(text)
    return p


def _example(**edits: str | None) -> str:
    """The example config with `key = ...` lines replaced (a str) or removed (None)."""
    text = EXAMPLE.read_text()
    for key, value in edits.items():
        rx = re.compile(rf"^{key} = .*$", re.M)
        assert len(rx.findall(text)) == 1, key
        text = rx.sub("" if value is None else f"{key} = {value}", text)
    return text


def _refused(path: Path) -> str:
    with pytest.raises(RigUnavailable) as e:
        RealRig.from_config(path)
    return str(e.value)


def test_no_config_file(tmp_path):
    for p in (tmp_path / "rig.toml", tmp_path):  # missing, and a directory
        msg = _refused(p)
        assert msg.startswith(f"no rig config at {p}") and "rig.example.toml" in msg


def test_broken_toml_names_the_file_and_the_place(tmp_path):
    p = _write(tmp_path, '[dut]\nkind = "button"\nserial = /dev/ttyACM0\n')
    msg = _refused(p)
    assert msg.startswith(f"{p}: not valid TOML") and "line 3" in msg
    p.write_bytes(b'[dut]\nroom = "K\xfcche"\n')  # Latin-1, not UTF-8
    assert _refused(p).startswith(f"{p}: not valid TOML")


@pytest.mark.parametrize("key", ["kind", "device_id", "key", "serial"])
def test_each_required_key(tmp_path, key):
    p = _write(tmp_path, _example(**{key: None}))
    assert _refused(p) == f"{p}: dut.{key}: missing (required)"


def test_no_dut_table(tmp_path):
    p = _write(tmp_path, 'name = "rig-1"\n[hub]\nadapter = "hci0"\n')
    assert _refused(p) == f"{p}: dut: missing (required)"


@pytest.mark.parametrize("edit, where, says", [
    ({"baud": '"fast"'}, "dut.baud", "'fast' is not an integer"),
    ({"button": "true"}, "gpio.button", "True is not an integer"),
    ({"power_active_high": "1"}, "gpio.power_active_high", "1 is not true or false"),
    ({"config": "3"}, "dut.config", "3 is not a table"),
    ({"name": "7"}, "name", "7 is not a string"),
    ({"kind": '"buton"'}, "dut.kind", "'buton' is not button | pir | bracelet"),
    ({"device_id": '"b001"'}, "dut.device_id", "'b001' is not 8 hex digits"),
    ({"device_id": '"00000000"'}, "dut.device_id", "is not 8 hex digits (not all zero)"),
    ({"device_id": '"0000b0g1"'}, "dut.device_id", "is not 8 hex digits"),
    ({"key": '"00112233"'}, "dut.key", "not 32 hex digits (128 bits)"),
    ({"serial": '""'}, "dut.serial", "empty"),
    ({"baud": "0"}, "dut.baud", "0 must be > 0"),
    ({"power": "-1"}, "gpio.power", "-1 is not a line offset"),
])
def test_wrong_values_name_the_key(tmp_path, edit, where, says):
    p = _write(tmp_path, _example(**edit))
    msg = _refused(p)
    assert msg.startswith(f"{p}: {where}: ") and says in msg, msg


def test_a_malformed_device_key_is_not_echoed(tmp_path):
    p = _write(tmp_path, _example(key='"00112233445566778899aabbccddeefX"'))
    assert "00112233" not in _refused(p), "the key's value is not echoed"


@pytest.mark.parametrize("line, where", [("buton = 17", "gpio.buton"),  # under [gpio]
                                         ("sos_hold_min = 1", "gpio.sos_hold_min")])
def test_unknown_keys_are_typos(tmp_path, line, where):
    p = _write(tmp_path, _example().replace("[gpio]\n", f"[gpio]\n{line}\n"))
    msg = _refused(p)
    assert msg.startswith(f"{p}: {where}: unknown key (a typo?); known: chip, button, ")


def test_unknown_table(tmp_path):
    p = _write(tmp_path, _example() + "\n[hubb]\nadapter = \"hci1\"\n")
    assert _refused(p).startswith(f"{p}: hubb: unknown key")


def test_the_example_is_valid_and_stops_at_this_machines_missing_port(tmp_path):
    cfg = tomllib.loads(EXAMPLE.read_text())
    check_config(cfg, EXAMPLE)  # no exception: every key known and well-formed
    if os.path.exists(cfg["dut"]["serial"]):
        pytest.skip(f"{cfg['dut']['serial']} exists here: not the machine this checks")
    p = tmp_path / "rig.toml"
    shutil.copy(EXAMPLE, p)
    msg = _refused(p)
    assert msg.startswith(f"{p}: dut.serial: the DUT's port /dev/ttyACM0 is not there")
    assert "USB serial ports here: " in msg and "is the DUT plugged?" in msg


def test_with_the_port_there_the_next_missing_piece_is_named(tmp_path):
    """Any tty is a valid port (here a pty; on a rig a /dev/serial/by-id/ link or the Pi's
    UART): the check goes on to the GPIO bindings."""
    if importlib.util.find_spec("gpiod") is not None:
        pytest.skip("gpiod is installed here: the next check needs the rig's GPIO chip")
    master, slave = os.openpty()
    try:
        p = _write(tmp_path, _example(serial=f'"{os.ttyname(slave)}"'))
        assert _refused(p) == ("the gpiod Python bindings are missing: pip install "
                               "'gpiod>=2.1' (libgpiod v2 bindings; docs/hil.md)")
    finally:
        os.close(master)
        os.close(slave)


def test_gpio_lines_need_the_v2_bindings():
    if importlib.util.find_spec("gpiod") is not None:
        pytest.skip("gpiod is installed here")
    from hil.real.gpio import Lines

    with pytest.raises(RigUnavailable, match=r"gpiod Python bindings are missing: pip install"):
        Lines("/dev/gpiochip0", {"button": (17, True)})


@pytest.fixture
def rig(tmp_path):
    """A RealRig on a validated config, built past from_config's hardware checks."""
    def make(**edits):
        p = _write(tmp_path, _example(**edits))
        cfg = tomllib.loads(p.read_text())
        check_config(cfg, p)
        made.append(RealRig(cfg, p))
        return made[-1]

    made: list[RealRig] = []
    yield make
    for r in made:
        workdir = r.workdir
        r.close()
        assert not workdir.exists()


def test_a_session_for_another_kind_of_device_is_unsupported(rig):
    r = rig()
    with pytest.raises(Unsupported, match=r"the rig's DUT is a button; this scenario needs "
                                          r"pir1, bracelet"):
        r.session(("pir1", "bracelet"))
    r = rig(kind='"pir"')
    with pytest.raises(Unsupported, match="DUT is a pir"):
        r.session(("button",))


def test_firmware_settings_the_dut_was_not_provisioned_with_are_unsupported(rig):
    r = rig()  # provisioned: log = true, sos_hold_min = 1
    with pytest.raises(Unsupported, match=r"provisioned with sos_hold_min = 2 \(has 1\)"):
        r.session(("button",), device_cfg={"button": {"sos_hold_min": 2, "log": True}})
    with pytest.raises(Unsupported, match=r"fall_confirm_s = 30 \(has None\)"):
        r.session(("button",), device_cfg={"button": {"fall_confirm_s": 30}})


def test_a_rig_without_a_power_line_cannot_reset_its_dut(rig):
    r = rig(power=None, power_active_high=None)
    with pytest.raises(Unsupported, match=r"no \[gpio\] power line"):
        r.session(("button",), device_cfg={"button": {"heartbeat_min": 5}})  # the hub's


def test_imu_line_is_integers_in_milli_g():
    assert imu_line([(1000, 8, -3), (998, 6, -1)]) == "I 1000,8,-3;998,6,-1"
    assert imu_line([(1000.4, -0.0, 2.6)]) == "I 1000,0,2", "never a float on the wire"


def _children(name: str) -> list[int]:
    """Live child processes of this one called `name`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Name") == name and fields.get("PPid") == str(os.getpid()) \
                and not fields.get("State", "").startswith("Z"):
            found.append(int(pid))
    return found


def test_a_session_that_fails_at_the_gpio_lines_leaves_nothing_running(rig):
    """The session starts the platform side for real (mosquitto with TLS, the hub's config,
    the platform consumer), then meets this machine's missing gpiod: it must say so and take
    down what it started (RealSession.close on a half-built session)."""
    if importlib.util.find_spec("gpiod") is not None:
        pytest.skip("gpiod is installed here: the session would go on to the GPIO chip")
    try:
        from hil.sim.broker import mosquitto_path

        mosquitto_path()
    except RuntimeError as e:
        pytest.skip(str(e))
    import threading

    r = rig()
    before = {t.ident for t in threading.enumerate()}
    assert _children("mosquitto") == []
    with pytest.raises(RigUnavailable, match="gpiod Python bindings are missing"):
        r.session(("button",), device_cfg={"button": {"log": True, "heartbeat_min": 5}})
    assert (r.workdir / "home-1" / "hub" / "hub.toml").is_file(), "it got as far as the hub"
    assert 'heartbeat_min = 5' in (r.workdir / "home-1" / "hub" / "hub.toml").read_text()
    assert _children("mosquitto") == [], "the broker was stopped"
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == [], f"threads left running: {left}"
