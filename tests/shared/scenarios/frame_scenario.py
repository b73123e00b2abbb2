# Runs on MicroPython and CPython alike: checks the shared codec against the
# reference vectors in docs/protocol-vectors.json, then prints a replay-window
# and retry-schedule trace. Every line must match between the two runtimes,
# and no line may say FAIL.
import json

import shared
from shared import frame as F
from shared.replay import ReplayWindow
from shared.retry import Retry
from shared.ticks import ticks_diff

root = shared.__file__.rsplit("/", 2)[0]
with open(root + "/docs/protocol-vectors.json") as fh:
    vec = json.load(fh)

buf = bytearray(F.FRAME_LEN)
abuf = bytearray(F.ACK_LEN)
adv = bytearray(F.ADV_LEN)
for i, v in enumerate(vec["frames"]):
    c = F.Codec(v["device_id"], bytes.fromhex(v["key"]))
    got = bytes(c.encode(buf, v["seq"], v["type"], v["arg"], v["age_ms"], v["attempt"]))
    ok = got.hex() == v["bytes"]
    f = c.verify(bytes.fromhex(v["bytes"]))
    ok = ok and (f.seq, f.mtype, f.attempt, f.age_ms, f.arg) == (
        v["seq"], v["type"], v["attempt"], v["decoded_age_ms"], v["arg"])
    ok = ok and bytes(F.build_adv(adv, got)).hex() == v["adv"]
    ok = ok and F.frame_from_adv(bytes.fromhex(v["adv"])) == got
    print("frame", i, "ok" if ok else "FAIL", got.hex())
for i, v in enumerate(vec["acks"]):
    c = F.Codec(v["device_id"], bytes.fromhex(v["key"]))
    got = bytes(c.encode_ack(abuf, v["seq"], v["type"], v["status"], v["clock"], v["setting"],
                             v["value"]))
    a = c.verify_ack(bytes.fromhex(v["bytes"]), v["type"])
    ok = got.hex() == v["bytes"] and (a.seq, a.status, a.setting, a.value) == (
        v["seq"], v["status"], v["setting"], v["value"])
    ok = ok and F.peek_ack_seq(got) == v["seq"]
    print("ack", i, "ok" if ok else "FAIL", a.clock_valid, a.tod_s, a.weekday)
for i, v in enumerate(vec["reject"]):
    c = F.Codec(v["device_id"], bytes.fromhex(v["key"]))
    data = bytes.fromhex(v["bytes"])
    try:
        c.verify(data) if v["kind"] == "frame" else c.verify_ack(data, v["type"])
        print("reject", i, "FAIL accepted:", v["why"])
    except F.FrameError as e:
        print("reject", i, "ok", e.reason)

# Every single-bit flip of a frame and of an acknowledgement is refused.
c = F.Codec(0x12345678, bytes(range(16)))
good = bytes(c.encode(buf, 9, F.T_SOS, 0, 300, 1))
good_ack = bytes(c.encode_ack(abuf, 9, F.T_SOS, F.ACK_HELP, F.encode_clock(7200, 3), 0, 0))


def check_sos_ack(data):
    return c.verify_ack(data, F.T_SOS)


for name, data, check in (("frame", good, c.verify), ("ack", good_ack, check_sos_ack)):
    accepted = 0
    for bit in range(len(data) * 8):
        m = bytearray(data)
        m[bit >> 3] ^= 1 << (bit & 7)
        try:
            check(bytes(m))
            accepted += 1
        except F.FrameError:
            pass
    print("bitflips", name, "ok" if accepted == 0 else "FAIL", accepted)

# An acknowledgement is bound to the type of the frame it answers: one made for a HEARTBEAT
# under seq 7 (a number repeated after a power loss) does not verify for an SOS under seq 7.
hb_ack = bytes(c.encode_ack(abuf, 7, F.T_HEARTBEAT, F.ACK_DELIVERED, 0, 0, 0))
ok = c.verify_ack(hb_ack, F.T_HEARTBEAT).status == F.ACK_DELIVERED
try:
    c.verify_ack(hb_ack, F.T_SOS)
    print("ack type FAIL: a HEARTBEAT's ack verified for an SOS")
except F.FrameError as e:
    print("ack type", "ok" if ok else "FAIL", e.reason)
for t in range(1, F.T_MAX + 1):
    refused = 0
    for u in range(1, F.T_MAX + 1):
        try:
            c.verify_ack(bytes(c.encode_ack(abuf, 7, t, F.ACK_STORED)), u)
        except F.FrameError:
            refused += 1
    print("ack type", t, "ok" if refused == F.T_MAX - 1 else "FAIL", refused)

w = ReplayWindow(64)
for s in (1, 2, 5, 3, 5, 2, 70, 6, 7, 69, 200, 136, 137, 199, 201):
    r = w.check(s)
    if r == 1:
        w.accept(s)
    print("replay", s, r, w.top)
w2 = ReplayWindow.from_bytes(w.to_bytes())
print("replay restored", w2.top, w2.to_bytes() == w.to_bytes(), w2.check(199), w2.check(198))

r = Retry()
r.start(0x3FFFFF00, 12345)  # starts just before the tick wrap
t = 0x3FFFFF00
sent = 0
while sent < 14:
    if r.due(t):
        print("retry", sent, ticks_diff(t, 0x3FFFFF00), r.overdue(t))
        r.sent(t)
        sent += 1
    t = (t + 50) & 0x3FFFFFFF
