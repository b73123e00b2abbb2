"""The installer's safe-boot instructions follow the firmware's hold times (review finding
7): 10 s on the SOS button (button, bracelet boards), 3 s on a PIR board's BOOT button."""

from __future__ import annotations

from firmware.hal import SAFE_BOOT_HOLD_MS
from firmware.safeboot import SOS_HOLD_MS
from tools.installer import deploy as D, errors as E


def test_hints_name_the_hold_time_of_each_board():
    for board in ("esp32c3-supermini-button", "m5stickc-plus2-bracelet"):
        hint = D.safe_boot_hint(board)
        assert "SOS button" in hint and f"{SOS_HOLD_MS // 1000} s" in hint, hint
        assert "3 s" not in hint
    for board in ("esp32c3-supermini-pir-am312", "esp32-devkit-pir-hcsr501"):
        hint = D.safe_boot_hint(board)
        assert "within 2 s" in hint and "BOOT button" in hint, hint
        assert f"hold it for {SAFE_BOOT_HOLD_MS // 1000} s" in hint, hint


def test_the_generic_hint_says_ten_seconds_for_the_sos_button():
    err = E.from_mpremote("/dev/ttyACM0", Exception("could not enter raw repl"))
    assert err.code == "board-silent" and "SOS button for 10 s" in err.todo
