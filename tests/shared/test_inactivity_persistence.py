"""shared/inactivity.py persistence: to_bytes()/from_bytes() round trip, checksum, corrupt data
refused, settings changed across a restart keep the history."""

import random
import zlib

import pytest
from inactivity_testing import HDR, Home, routine_day

from shared import inactivity as ina
from shared.inactivity import Inactivity


def learned_home():
    rng = random.Random(6)
    home = Home(days=3)
    for day in range(3):
        routine_day(home, day, rng)
    return home


def test_round_trip_and_checksum():
    home = learned_home()
    data = home.det.to_bytes()
    assert len(data) == HDR + 3 * 96 + 4 and data[0] == ina.VERSION
    a, b = zlib.adler32(data[:-4]) & 0xFFFF, zlib.adler32(data[:-4]) >> 16
    assert data[-4:] == bytes([a & 0xFF, a >> 8, b & 0xFF, b >> 8])
    again = Inactivity.from_bytes(data, 12345, days=3)
    assert again.to_bytes() == data
    for attr in ("state", "still_ms", "threshold_ms", "learned_days", "ended_still_ms"):
        assert getattr(again, attr) == getattr(home.det, attr)
    fresh = Inactivity()
    assert Inactivity.from_bytes(fresh.to_bytes(), 7).to_bytes() == fresh.to_bytes()


def test_restore_rejects_bad_data_naming_what_is_wrong():
    data = learned_home().det.to_bytes()
    with pytest.raises(ValueError, match="version"):
        Inactivity.from_bytes(b"\x02" + data[1:], 0, days=3)
    with pytest.raises(ValueError, match="version"):
        Inactivity.from_bytes(b"", 0, days=3)
    with pytest.raises(ValueError, match="days"):
        Inactivity.from_bytes(data, 0, days=4)
    with pytest.raises(ValueError, match="length"):
        Inactivity.from_bytes(data[:-1], 0, days=3)
    with pytest.raises(ValueError, match="checksum"):
        Inactivity.from_bytes(data[:-1] + bytes([data[-1] ^ 1]), 0, days=3)
    with pytest.raises(ValueError, match="margin_pct"):
        Inactivity.from_bytes(data, 0, days=3, margin_pct=1)


def test_every_single_byte_corruption_is_rejected():
    data = learned_home().det.to_bytes()
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(ValueError):
                Inactivity.from_bytes(bytes(bad), 0, days=3)


def test_settings_may_change_across_a_restart_and_keep_the_history():
    home = learned_home()
    data = home.det.to_bytes()
    wider = Inactivity.from_bytes(data, 0, days=3, margin_pct=200)
    assert wider.threshold_ms > home.det.threshold_ms
    assert wider.to_bytes()[HDR:-4] == data[HDR:-4]
