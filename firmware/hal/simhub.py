"""A hub double for the simulated medium (tests, demo, energy bench).

It hears every advert, verifies the frame with the device's key
(shared.frame.Codec), and answers like the real hub: some time after it first
hears a frame it connects, writes an authenticated acknowledgement with the
message's current status, the clock and one pending setting, and disconnects.
A frame heard again (a retry) is acknowledged again with its current status
(protocol: duplicates are re-acknowledged). Each acknowledgement is bound to
the type of the frame it first heard under that number (its "stored record"):
a frame under a number reused after a power loss thus gets acknowledgements
its device refuses, as it would one left in a real hub's queue (the real hub
sends none, hub/pipeline_replays.py). Statuses climb on their own:
STORED at once, DELIVERED after deliver_ms, HELP for SOS / FALL_CONFIRMED
after help_ms (None: never); set_status() overrides.

Knobs for scenarios: down (hears nothing), latency_ms (advert to write),
conn_ms (connection before the write), settings (queue of (id, value)),
tod_s / weekday (the clock it sends; tod_s < 0: unsynchronised).
"""

from shared.frame import (
    ACK_DELIVERED,
    ACK_HELP,
    ACK_LEN,
    ACK_STORED,
    T_FALL_CONFIRMED,
    T_SOS,
    Codec,
    FrameError,
    encode_clock,
    frame_from_adv,
    peek_device_id,
)


class LoopbackHub:
    def __init__(self, latency_ms=800, conn_ms=300):
        self.latency_ms = latency_ms
        self.conn_ms = conn_ms
        self.deliver_ms = 1000
        self.help_ms = None
        self.down = False
        self.tod_s = 8 * 3600  # 08:00
        self.tod_at = 0
        self.weekday = 2
        self.settings = []  # (setting id, value), one per acknowledgement
        self.codecs = {}  # device id -> Codec
        self.frames = []  # (t, device name, Frame) for every verified reception
        self.rejected = []  # (t, device name, reason)
        self.acks_sent = []  # (t, device name, seq, status)
        self.first_seen = {}  # (device id, seq) -> (t, type)
        self.overrides = {}  # (device id, seq) -> status
        self._busy = {}  # device -> a connection cycle is planned
        self._events = []  # (t, order, kind, device)
        self._order = 0
        self.now = 0

    def register(self, cfg):
        self.codecs[cfg.device_id] = Codec(cfg.device_id, cfg.key)

    def set_status(self, device_id, seq, status):
        self.overrides[(device_id, seq)] = status

    def status_of(self, device_id, seq, now_ms):
        if (device_id, seq) in self.overrides:
            return self.overrides[(device_id, seq)]
        t0, mtype = self.first_seen[(device_id, seq)]
        age = now_ms - t0
        if (mtype == T_SOS or mtype == T_FALL_CONFIRMED) and self.help_ms is not None \
                and age >= self.help_ms:
            return ACK_HELP
        if self.deliver_ms is not None and age >= self.deliver_ms:
            return ACK_DELIVERED
        return ACK_STORED

    def _verify(self, device, adv):
        data = frame_from_adv(adv)
        if data is None:
            self.rejected.append((self.now, device.plat.name, "no frame in advert"))
            return None
        try:
            codec = self.codecs.get(peek_device_id(data))
            if codec is None:
                raise FrameError("unknown device")
            return codec.verify(data)
        except FrameError as e:
            self.rejected.append((self.now, device.plat.name, e.reason))
            return None

    # -- the medium interface ----------------------------------------------------
    def advertise(self, device, adv, connectable):
        self.now = device.plat.now
        if self.down:
            return
        f = self._verify(device, adv)
        if f is None:
            return
        self.frames.append((self.now, device.plat.name, f))
        key = (f.device_id, f.seq)
        if key not in self.first_seen:
            self.first_seen[key] = (self.now, f.mtype)
        if connectable and not self._busy.get(device):
            self._busy[device] = True
            t = self.now + self.latency_ms
            self._plan(t - self.conn_ms, "connect", device)
            self._plan(t, "write", device)
            self._plan(t + 20, "disconnect", device)

    def stop(self, device):
        pass

    def _plan(self, t, kind, device):
        self._order += 1
        self._events.append((t, self._order, kind, device))
        self._events.sort(key=lambda e: (e[0], e[1]))

    def poll(self, now_ms):
        self.now = now_ms
        while self._events and self._events[0][0] <= now_ms:
            _t, _o, kind, device = self._events.pop(0)
            if kind == "connect":
                if self.down or not device.radio.connect():
                    self._busy[device] = False
                    self._drop(device)
            elif kind == "write":
                self._write(device, now_ms)
            else:
                device.radio.disconnect()
                self._busy[device] = False
        return self._events[0][0] if self._events else None

    def _drop(self, device):
        self._events = [e for e in self._events if e[3] is not device]

    def ack_bytes(self, device_id, seq, mtype, status, now_ms, setting=0, value=0):
        """An acknowledgement of frame `seq` of type `mtype` (under the tag, not sent)."""
        codec = self.codecs[device_id]
        tod = -1 if self.tod_s < 0 else (self.tod_s + (now_ms - self.tod_at) // 1000) % 86400
        return bytes(codec.encode_ack(bytearray(ACK_LEN), seq, mtype, status,
                                      encode_clock(tod, self.weekday), setting, value))

    def _write(self, device, now_ms):
        if not device.radio.connected:
            return
        f = self._verify(device, device.radio.adv)  # what it advertised when we connected
        if f is None:
            return
        st = self.status_of(f.device_id, f.seq, now_ms)
        mtype = self.first_seen[(f.device_id, f.seq)][1]  # the record's, not the advert's
        setting, value = self.settings.pop(0) if self.settings else (0, 0)
        device.radio.deliver_write(
            self.ack_bytes(f.device_id, f.seq, mtype, st, now_ms, setting, value))
        self.acks_sent.append((now_ms, device.plat.name, f.seq, st))


def seqs_unique(frames):
    """'' if every sequence number always carried the same message, else the first clash."""
    seen: dict = {}
    for t, name, f in frames:
        k = (name, f.seq)
        v = (f.mtype, f.arg)
        if k in seen and seen[k] != v:
            return "seq %d of %s carried %r and then %r (t=%d)" % (f.seq, name, seen[k], v, t)
        seen[k] = v
    return ""
