"""When a held input at power-up skips the app: the safe-boot policy.

firmware/main.py applies it on the device; the simulator's runner
(firmware/hal/simworld.py) applies the same functions, so the tests see what the
device does.

Safe boot leaves the device inert (the REPL waits for the installer) until someone
resets it. On button and bracelet boards its input is the SOS button, which an elder
may be holding in panic when the chip resets (a brown-out at BLE start on weak cells,
the firmware's own machine.reset() after repeated errors: MicroPython reports both as
power-on or hard reset). Hence:

- never while NVS records an alarm-class message still being sent (the SOS, a fall,
  a cancel or a test): the app must go on sending it;
- on those boards, the SOS button held SOS_HOLD_MS (10 s), not 3 s.

An installer who must reach the REPL of a device stuck with an alarm it cannot deliver
(no hub in range) erases the flash through the ROM bootloader (docs/installer.md).
"""

from firmware.apps import alarmrec
from firmware.hal import IN_BUTTON, SAFE_BOOT_HOLD_MS
from shared.compat import const
from shared.frame import is_alarm

# 10 s: the lead's figure for the review (finding 7), not a measured bound on panic
# holds: over 3x the 3 s "hold to cancel", above the 8 s panic hold of the review's
# demo, below the 30 s after which the app calls the button stuck.
SOS_HOLD_MS = const(10000)


def hold_ms(kind, board):
    """How long the safe-boot input must be held: longer when it is the SOS button."""
    if kind != "pir" and board.safe_boot_input == IN_BUTTON:
        return SOS_HOLD_MS
    return SAFE_BOOT_HOLD_MS


def alarm_pending(hal):
    """NVS records an alarm-class message the app would re-send after power-on
    (firmware/apps/alarmrec.py, read the way core.recover_alarm() reads it)."""
    recs, _old = alarmrec.read(hal, bytearray(alarmrec.REC_MAX))
    for seq, mtype, _arg in recs:
        if seq and is_alarm(mtype):
            return True
    return False
