"""Reference encoder for docs/protocol.md, written from the document with the
standard library only (struct + hmac), independently of shared/frame.py.
It writes docs/protocol-vectors.json; the tests check that the shared codec,
on CPython and on MicroPython, reproduces and accepts every vector and refuses
every "reject" vector.

    python docs/protocol_vectors.py   # rewrites the JSON
"""

import hashlib
import hmac
import json
import struct
from pathlib import Path

OUT = Path(__file__).with_name("protocol-vectors.json")


def tag(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()[:8]


def age16(ms: int) -> int:
    if ms <= 0x7FFF * 100:
        return ms // 100
    return 0x8000 | min(ms // 60000, 0x7FFF)


def frame(key, device_id, seq, mtype, attempt, age_ms, arg) -> bytes:
    body = struct.pack(">BIIBBH", 0x10, device_id, seq, mtype, attempt, age16(age_ms))
    body += arg.to_bytes(3, "big")
    return body + tag(key, body)


def ack(key, device_id, seq, mtype, status, clock, setting, value) -> bytes:
    """`mtype`: the acknowledged frame's type, not sent but under the tag."""
    body = struct.pack(">BIB", 0x11, seq, status) + clock.to_bytes(3, "big")
    body += struct.pack(">BH", setting, value)
    return body + tag(key, body[:1] + struct.pack(">IB", device_id, mtype) + body[1:])


def clock(tod_s: int, weekday: int) -> int:
    return 0x800000 | (weekday << 17) | tod_s


def adv(fr: bytes) -> bytes:
    return bytes([2, 0x01, 0x06, 27, 0xFF, 0xFF, 0xFF]) + fr


def main() -> None:
    k1 = bytes(range(16))
    k2 = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
    frames = [
        (k1, 0x00000001, 1, 1, 0, 0, 0),  # SOS, first frame ever
        (k1, 0x12345678, 7, 1, 2, 1234, 0),  # SOS, third attempt, 1.2 s old
        (k2, 0xFFFFFFFF, 0xFFFFFFFF, 2, 255, 3276700, 0xFFFFFF),  # cancel, limits
        (k2, 0x0A0B0C0D, 1000, 3, 0, 3276800, 1),  # test, coarse age (54 min 36.8 s -> 54 min)
        (k1, 0x00C0FFEE, 42, 5, 1, 90 * 60000, 3),  # fall confirmed, 90 min old
        (k1, 0x00C0FFEE, 43, 7, 0, 0, (17 << 8) | 5),  # activity: 17 motions in 5 min
        (k2, 0x00000002, 99, 8, 0, 500, (87 << 16) | (1 << 8) | 150),  # heartbeat 87 %, charging
        (k2, 0x00000002, 100, 11, 0, 0, (2 << 16) | (1 << 8)),  # fault PIR stuck raised
        (k1, 0x00000003, 5, 14, 0, 100 * 86400000, 1),  # door, age saturates (22.7 days)
    ]
    acks = [  # (key, device id, seq, acknowledged frame's type, status, clock, setting, value)
        (k1, 0x12345678, 7, 1, 1, 0, 0, 0),  # SOS stored, no clock
        (k1, 0x12345678, 7, 1, 2, clock(3600, 0), 0, 0),  # SOS delivered, Monday 01:00
        (k2, 0xFFFFFFFF, 0xFFFFFFFF, 2, 3, clock(86399, 6), 1, 60),  # help + heartbeat 60 min
        (k2, 0x00000002, 99, 8, 1, clock(0, 7), 5, 420),  # heartbeat stored, quiet hours end
        (k1, 0x12345678, 7, 8, 2, clock(3600, 0), 0, 0),  # a HEARTBEAT's under the SOS's seq
    ]
    out = {"frames": [], "acks": [], "reject": []}
    for k, dev, seq, t, att, age, arg in frames:
        fr = frame(k, dev, seq, t, att, age, arg)
        dec_age = (age16(age) & 0x7FFF) * 60000 if age16(age) & 0x8000 else age16(age) * 100
        out["frames"].append({
            "key": k.hex(), "device_id": dev, "seq": seq, "type": t, "attempt": att,
            "age_ms": age, "decoded_age_ms": dec_age, "arg": arg,
            "bytes": fr.hex(), "adv": adv(fr).hex(),
        })
    for k, dev, seq, t, st, clk, s, v in acks:
        out["acks"].append({
            "key": k.hex(), "device_id": dev, "seq": seq, "type": t, "status": st,
            "clock": clk, "setting": s, "value": v,
            "bytes": ack(k, dev, seq, t, st, clk, s, v).hex(),
        })
    good = frame(k1, 0x12345678, 7, 1, 2, 1234, 0)
    good_ack = ack(k1, 0x12345678, 7, 1, 1, 0, 0, 0)
    # ("type": the acknowledged frame's type an "ack" vector is checked as: SOS)
    bad = [
        ("frame", good[:-1], "truncated"),
        ("frame", good + b"\0", "too long"),
        ("frame", bytes([0x20]) + good[1:], "version 2 header"),
        ("frame", good[:16] + bytes(8), "zero tag"),
        ("frame", frame(k2, 0x12345678, 7, 1, 2, 1234, 0), "sealed with another key"),
        ("frame", good[:9] + bytes([2]) + good[10:], "type changed, tag kept"),
        ("frame", frame(k1, 0x12345678, 7, 15, 0, 0, 0), "unknown type, valid tag"),
        ("ack", good_ack[:12] + bytes(8), "zero tag"),
        ("ack", ack(k1, 0x12345679, 7, 1, 1, 0, 0, 0), "acknowledgement for another device"),
        ("ack", ack(k1, 0x12345678, 7, 1, 4, 0, 0, 0), "unknown status, valid tag"),
        ("ack", ack(k1, 0x12345678, 7, 8, 2, clock(3600, 0), 0, 0),
         "a HEARTBEAT's acknowledgement under the SOS's seq (a reused number)"),
        ("ack", good[:20], "a device frame cut to acknowledgement length"),
    ]
    for kind, data, why in bad:
        out["reject"].append({
            "kind": kind, "key": k1.hex(), "device_id": 0x12345678, "type": 1,
            "bytes": data.hex(), "why": why,
        })
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} ({len(frames)} frames, {len(acks)} acks, {len(bad)} rejects)")


if __name__ == "__main__":
    main()
