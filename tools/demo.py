"""The main job of `./run demo`.

Until the simulated home (hil/sim) exists this walks one alarm through the
real shared core, exactly as the button and the hub use it: debounce → frame
→ advertisement → hub verification and replay check → authenticated
acknowledgement back to the device; then a forged acknowledgement, and a
simulated week of a home's activity through the inactivity detector with a
collapse at the end.
"""

from __future__ import annotations

import os
import sys

from shared import frame as F
from shared.button import EV_PRESS, EV_RELEASE, Button
from shared.inactivity import (
    EV_ALARM,
    EV_CLEARED,
    EV_PREALARM,
    SRC_MOTION,
    Inactivity,
)
from shared.replay import R_DUPLICATE, R_NEW, ReplayWindow
from shared.retry import Retry
from shared.ticks import ticks_add, ticks_diff

HOUR = 3_600_000
DAY = 24 * HOUR


def say(who: str, text: str) -> None:
    print(f"  {who:<8} {text}")


def one_alarm() -> None:
    print("\n1. One press, from the button to the hub and back")
    device_id, key = 0x0000A1B2, os.urandom(16)  # a fresh key, as provisioning makes
    device, hub = F.Codec(device_id, key), F.Codec(device_id, key)
    window = ReplayWindow()
    button, retry = Button(), Retry()
    t = ticks_add(0x3FFFFFFF, -120)  # start just before the ESP32 tick wrap, on purpose
    seq, sent = 41, 0
    frame = bytearray(F.FRAME_LEN)
    adv = bytearray(F.ADV_LEN)
    # a shaky press: bounce on the way down, 300 ms held, bounce on release
    levels = [1, 0, 1, 0, 1] + [1] * 30 + [0, 1, 0] + [0] * 200
    press_at = None
    for level in levels:
        ev = button.update(t, bool(level))
        if ev & EV_PRESS:
            press_at = button.press_at
            seq += 1
            say("button", f"press (first edge {ticks_diff(t, press_at)} ms ago): SOS seq {seq}")
            retry.start(t, seed=device_id ^ seq)
        if ev & EV_RELEASE:
            say("button", f"released after {button.held_ms} ms")
        if retry.due(t):
            age = ticks_diff(t, press_at)
            F.build_adv(adv, device.encode(frame, seq, F.T_SOS, 0, age, retry.attempts))
            retry.sent(t)
            sent += 1
            if sent == 2:  # the hub hears the second advert of the burst
                data = F.frame_from_adv(bytes(adv))
                f = hub.verify(data)
                verdict = window.check(f.seq)
                assert verdict == R_NEW
                window.accept(f.seq)
                say(
                    "hub",
                    f"advert {adv.hex()[:24]}… verified: SOS from {f.device_id:08x}, "
                    f"seq {f.seq}, attempt {f.attempt}, {f.age_ms} ms old",
                )
                ack = hub.encode_ack(
                    bytearray(F.ACK_LEN), f.seq, F.ACK_STORED, F.encode_clock(8 * 3600, 0)
                )
                a = device.verify_ack(bytes(ack))
                if a.seq == seq:
                    retry.stop()
                    say(
                        "button",
                        f"authenticated ack: STORED, clock {a.tod_s // 3600:02d}:00 "
                        f"-> light shows 'received'",
                    )
                again = "a duplicate" if window.check(f.seq) == R_DUPLICATE else "NEW?!"
                say("hub", f"the same frame again is {again}")
        t = ticks_add(t, 10)
    say(
        "button",
        f"{sent} adverts sent; retries {'stopped' if not retry.active else 'still running'}",
    )

    print("\n2. A forged acknowledgement")
    forger = F.Codec(device_id, os.urandom(16))
    fake = forger.encode_ack(bytearray(F.ACK_LEN), seq, F.ACK_HELP)
    try:
        device.verify_ack(bytes(fake))
        say("button", "accepted a forgery (this must never happen)")
        sys.exit(1)
    except F.FrameError as e:
        say("button", f"refused: {e.reason}; retries go on")


def a_week_at_home() -> None:
    print("\n3. A week of a home's life, then a collapse at 10:00")
    det = Inactivity()
    t = 0
    minute = 60_000
    for day in range(8):
        for m in range(0, 24 * 60, 5):
            tod = m * minute
            awake = 7 * 60 <= m < 22 * 60
            collapsed = day == 7 and m >= 10 * 60
            if awake and not collapsed and m % 40 == 0:
                ev = det.activity(t, tod, SRC_MOTION)
            else:
                ev = det.tick(t, tod)
            when = f"day {day + 1} {m // 60:02d}:{m % 60:02d}"
            if ev & EV_PREALARM:
                say(
                    "hub",
                    f"{when} pre-alarm after {det.still_ms // minute} min still: "
                    f"'are you all right?'",
                )
            if ev & EV_ALARM:
                say(
                    "hub",
                    f"{when} ALARM to the county platform "
                    f"({det.still_ms // minute} min still, learned {det.learned_days} days)",
                )
                return
            if ev & EV_CLEARED:
                say("hub", f"{when} cleared by movement")
            t = ticks_add(t, 5 * minute)


def main() -> None:
    print("carebeacon — the shared core, end to end (the simulated home demo comes with hil/sim)")
    one_alarm()
    a_week_at_home()
    print("\nDone.")


if __name__ == "__main__":
    main()
