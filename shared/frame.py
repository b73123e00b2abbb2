# The radio frame (device -> hub) and the acknowledgement (hub -> device).
# Byte layouts, crypto and the rules around them are in docs/protocol.md;
# this module is their only implementation, shared by firmware, hub and tests.
#
# Device frame, 24 bytes, carried as manufacturer data in ONE legacy BLE
# advertisement (31 bytes = 3 flags + 4 manufacturer header + 24):
#   0 hdr  1 device_id(4)  5 seq(4)  9 type  10 attempt  11 age(2)  13 arg(3)
#   16 tag(8) = HMAC-SHA256(key, bytes 0..15)[:8]
# Acknowledgement, 20 bytes (fits one default-MTU GATT write, 23 - 3):
#   0 hdr  1 seq(4)  5 status  6 clock(3)  9 setting  10 value(2)
#   12 tag(8) = HMAC-SHA256(key, hdr || device_id || type || bytes 1..11)[:8]
#   (type: the acknowledged frame's message type, not sent: both sides know it, and an ack
#   made for one frame cannot raise another frame under a reused number)
from shared.compat import const
from shared.hmac256 import Hmac256, equal

HDR_FRAME = const(0x10)  # protocol version 1 (high nibble), class 0: device frame
HDR_ACK = const(0x11)  # protocol version 1, class 1: acknowledgement
FRAME_LEN = const(24)  # 31-byte legacy advert minus flags (3) and manufacturer header (4)
ACK_LEN = const(20)  # default ATT MTU 23 minus the 3-byte write header
TAG_LEN = const(8)  # 64-bit tag: the floor the issue sets; forgery odds 2**-64 per try
COMPANY_ID = const(0xFFFF)  # Bluetooth SIG: reserved for internal use / testing
ADV_LEN = const(31)  # legacy advertising payload (Core spec Vol 6 Part B 2.3.1)

# Device -> hub message types (docs/protocol.md, "Message types").
T_SOS = const(1)
T_SOS_CANCEL = const(2)
T_TEST = const(3)
T_FALL_SUSPECTED = const(4)
T_FALL_CONFIRMED = const(5)
T_FALL_CANCELLED = const(6)
T_ACTIVITY = const(7)
T_HEARTBEAT = const(8)
T_WORN = const(9)
T_NOT_WORN = const(10)
T_FAULT = const(11)
T_LOW_BATTERY = const(12)
T_MOTION = const(13)
T_DOOR = const(14)
T_MAX = const(14)

# Message types the hub keeps forever and forwards before anything else.
_ALARM_MASK = const(0x7E)  # bits of T_SOS .. T_FALL_CANCELLED

# Acknowledgement statuses, in the order an alarm climbs them.
ACK_STORED = const(1)  # committed to the hub's durable store
ACK_DELIVERED = const(2)  # the county platform's broker confirmed it (PUBACK success)
ACK_HELP = const(3)  # an operator acknowledged: help is on the way
ACK_MAX = const(3)

# Settings an acknowledgement can carry, one per acknowledgement.
S_NONE = const(0)
S_HEARTBEAT_MIN = const(1)  # heartbeat interval, minutes
S_SUMMARY_MIN = const(2)  # activity summary interval, minutes
S_CANCEL_S = const(3)  # fall cancel window, seconds
S_QUIET_START_MIN = const(4)  # quiet hours for the buzzer: start, minutes after midnight
S_QUIET_END_MIN = const(5)  # quiet hours: end, minutes after midnight
S_PREALARM = const(6)  # whole-home inactivity pre-alarm: minutes left before the alarm, 0 = over
S_IDENTIFY = const(7)  # blink (and beep outside quiet hours) for this many seconds: "it's me"
S_MAX = const(7)  # the highest id a hub sends; devices ignore ids they do not know
# The values a device keeps for settings 1..5, by setting id (index 0 = S_NONE, unused): the
# firmware clamps to them (firmware/apps/settings.py) and checks its config.json against them
# (firmware/config.py); the hub checks hub.toml and refuses a platform value outside them
# (hub/config.py, hub/contract_requests.py). Heartbeat <= 1 day keeps tick maths exact; the
# summary interval fits ACTIVITY's 8-bit minutes field (4 h); the fall cancel window is the
# requirement's 10-30 s; quiet hours are minutes of a day.
SETTING_LO = (0, 1, 1, 10, 0, 0)
SETTING_HI = (0, 1440, 240, 30, 1439, 1439)

# Fault codes (first byte of a T_FAULT arg).
F_BUTTON_STUCK = const(1)
F_PIR_STUCK = const(2)
F_PIR_SILENT = const(3)
F_IMU = const(4)
F_BOARD_CONFIG = const(5)
F_STORAGE = const(6)
F_RADIO = const(7)
F_WATCHDOG_RESET = const(8)

_AGE_COARSE = const(0x8000)  # top bit set: age counted in minutes instead of 100 ms
_AGE_FINE_MAX_MS = const(3276700)  # 0x7FFF * 100 ms, about 54.6 minutes
_AGE_MAX_MIN = const(0x7FFF)  # about 22.7 days
_CLOCK_VALID = const(0x800000)
_DAY_S = const(86400)


class FrameError(ValueError):
    """A frame or acknowledgement that must be refused; `reason` says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def is_alarm(mtype):
    return mtype <= 7 and (_ALARM_MASK >> mtype) & 1 == 1


def encode_age(age_ms, age_min=0):
    """Event age to 16 bits: 100 ms steps up to ~54 min, then minutes (saturating).

    `age_min`: whole minutes on top of `age_ms`. A device keeps an old event's age as
    minutes plus a tick distance (firmware/apps/outbox.py): one tick distance cannot
    span more than 6.2 days, and 22.7 days in ms would not fit a small int.
    """
    if age_ms < 0:
        age_ms = 0
    if age_min <= 0 and age_ms <= _AGE_FINE_MAX_MS:
        return age_ms // 100
    m = age_ms // 60000 + (age_min if age_min > 0 else 0)
    return _AGE_COARSE | (m if m < _AGE_MAX_MIN else _AGE_MAX_MIN)


def decode_age(v):
    if v & _AGE_COARSE:
        return (v & 0x7FFF) * 60000
    return v * 100


def encode_clock(tod_s, weekday):
    """Local time of day (s) and weekday (0 = Monday, 7 = unknown); tod_s < 0 = no clock."""
    if tod_s < 0:
        return 0
    return _CLOCK_VALID | ((weekday & 7) << 17) | (tod_s % _DAY_S)


def _put32(buf, off, v):
    buf[off] = (v >> 24) & 0xFF
    buf[off + 1] = (v >> 16) & 0xFF
    buf[off + 2] = (v >> 8) & 0xFF
    buf[off + 3] = v & 0xFF


def _get32(buf, off):
    return (buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]


def _get24(buf, off):
    return (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2]


def _put24(buf, off, v):
    buf[off] = (v >> 16) & 0xFF
    buf[off + 1] = (v >> 8) & 0xFF
    buf[off + 2] = v & 0xFF


def peek_device_id(data):
    """The claimed sender of a device frame, to look its key up. Not authenticated."""
    if len(data) != FRAME_LEN or data[0] != HDR_FRAME:
        raise FrameError("not a carebeacon frame")
    return _get32(data, 1)


def peek_ack_seq(data):
    """The number an acknowledgement claims to answer, to find the frame (and so the type) it
    must verify against. Not authenticated: verify_ack with that frame's type before use."""
    if len(data) != ACK_LEN or data[0] != HDR_ACK:
        raise FrameError("not a version-1 acknowledgement")
    return _get32(data, 1)


class Frame:
    """A verified device frame (hub side)."""

    def __init__(self, device_id, seq, mtype, attempt, age_ms, arg):
        self.device_id = device_id
        self.seq = seq
        self.mtype = mtype
        self.attempt = attempt
        self.age_ms = age_ms
        self.arg = arg


class Ack:
    """A verified acknowledgement (device side)."""

    def __init__(self, seq, status, clock, setting, value):
        self.seq = seq
        self.status = status
        self.clock_valid = (clock & _CLOCK_VALID) != 0
        self.tod_s = clock & 0x1FFFF
        self.weekday = (clock >> 17) & 7
        self.setting = setting
        self.value = value


class Codec:
    """Everything one device and the hub do with that device's 128-bit key."""

    def __init__(self, device_id, key):
        if not 0 < device_id <= 0xFFFFFFFF:
            raise ValueError("device_id must be in 1..2**32-1")
        if len(key) != 16:
            raise ValueError("key must be 16 bytes (128 bits)")
        self.device_id = device_id
        self._mac = Hmac256(key)
        self._id = bytearray(4)
        _put32(self._id, 0, device_id)
        # What an acknowledgement's tag covers before its bytes 1..11: header, device id and
        # the acknowledged frame's type (byte 5, set per call). Preallocated, so a device
        # verifies an ack without allocating for it (one Codec is used by one thread).
        self._ack_pre = bytearray(6)
        self._ack_pre[0] = HDR_ACK
        for i in range(4):
            self._ack_pre[1 + i] = self._id[i]

    # -- device frames --------------------------------------------------------
    def encode(self, buf, seq, mtype, arg=0, age_ms=0, attempt=0, age_min=0):
        """Write a sealed 24-byte frame into `buf` (a bytearray of >= 24) and return it.

        The event's age is `age_min` minutes plus `age_ms` (see encode_age).
        """
        if not 1 <= mtype <= T_MAX:
            raise ValueError("unknown message type")
        if not 0 <= seq <= 0xFFFFFFFF or not 0 <= arg <= 0xFFFFFF:
            raise ValueError("seq or arg out of range")
        buf[0] = HDR_FRAME
        # The id's bytes are copied, not shifted out of device_id: three ids in four are
        # >= 2**30, a big int on MicroPython, and every shift of one allocates.
        d = self._id
        buf[1] = d[0]
        buf[2] = d[1]
        buf[3] = d[2]
        buf[4] = d[3]
        _put32(buf, 5, seq)
        buf[9] = mtype
        buf[10] = attempt & 0xFF
        age = encode_age(age_ms, age_min)
        buf[11] = age >> 8
        buf[12] = age & 0xFF
        _put24(buf, 13, arg)
        tag = self._mac.digest(memoryview(buf)[:16])
        for i in range(TAG_LEN):
            buf[16 + i] = tag[i]
        return buf

    def verify(self, data):
        """Check a frame claimed by this device; return a Frame or raise FrameError."""
        if len(data) != FRAME_LEN:
            raise FrameError("length %d, expected %d" % (len(data), FRAME_LEN))
        if data[0] != HDR_FRAME:
            raise FrameError("header 0x%02x is not a version-1 device frame" % data[0])
        if _get32(data, 1) != self.device_id:
            raise FrameError("frame is for another device")
        tag = self._mac.digest(memoryview(data)[:16])
        if not equal(data, 16, tag, TAG_LEN):
            raise FrameError("bad tag (forged, corrupted or wrong key)")
        mtype = data[9]
        if not 1 <= mtype <= T_MAX:
            raise FrameError("unknown message type %d" % mtype)
        seq = _get32(data, 5)
        if not seq:  # devices number from 1 (docs/protocol.md): no event can be named by 0
            raise FrameError("sequence number 0")
        age = decode_age((data[11] << 8) | data[12])
        return Frame(self.device_id, seq, mtype, data[10], age, _get24(data, 13))

    # -- acknowledgements -----------------------------------------------------
    def _ack_tag(self, ack, mtype):
        # HMAC(key, header || device id || type || bytes 1..11); the header is HDR_ACK
        # (written by encode_ack, checked by verify_ack before this), so the prefix is fixed.
        pre = self._ack_pre
        pre[5] = mtype
        return self._mac.digest(pre, memoryview(ack)[1:12])

    def encode_ack(self, buf, seq, mtype, status, clock=0, setting=S_NONE, value=0):
        """Write a sealed 20-byte acknowledgement of frame `seq` (message type `mtype`) into
        `buf`. The type is not sent but is under the tag: see verify_ack."""
        if not 1 <= mtype <= T_MAX:
            raise ValueError("unknown message type")
        if not 1 <= status <= ACK_MAX or not 0 <= setting <= S_MAX:
            raise ValueError("unknown status or setting")
        if not 0 <= value <= 0xFFFF or not 0 <= clock <= 0xFFFFFF:
            raise ValueError("value or clock out of range")
        buf[0] = HDR_ACK
        _put32(buf, 1, seq)
        buf[5] = status
        _put24(buf, 6, clock)
        buf[9] = setting
        buf[10] = value >> 8
        buf[11] = value & 0xFF
        tag = self._ack_tag(buf, mtype)
        for i in range(TAG_LEN):
            buf[12 + i] = tag[i]
        return buf

    def verify_ack(self, data, mtype):
        """Check an acknowledgement sent to this device for its frame of type `mtype` (the
        frame pending under the ack's seq: peek_ack_seq); return an Ack or raise FrameError.

        An ack made for another frame under the same number (a number repeated after a power
        loss, docs/protocol.md) fails its tag: it cannot give this frame that one's status.
        """
        if not 1 <= mtype <= T_MAX:  # (a bytearray on MicroPython would wrap 256 to 0)
            raise ValueError("unknown message type")
        if len(data) != ACK_LEN:
            raise FrameError("length %d, expected %d" % (len(data), ACK_LEN))
        if data[0] != HDR_ACK:
            raise FrameError("header 0x%02x is not a version-1 acknowledgement" % data[0])
        if not equal(data, 12, self._ack_tag(data, mtype), TAG_LEN):
            raise FrameError("bad tag (forged, corrupted, wrong key or another frame's)")
        status = data[5]
        setting = data[9]
        if not 1 <= status <= ACK_MAX:
            raise FrameError("unknown status %d" % status)
        # An unknown setting id is passed on, not refused: the device ignores it, and the
        # status (the part an elder waits for) must not be lost to a newer hub.
        return Ack(_get32(data, 1), status, _get24(data, 6), setting, (data[10] << 8) | data[11])


def build_adv(adv, frame):
    """Fill a 31-byte bytearray with the legacy advertisement carrying `frame`."""
    adv[0] = 2  # AD length: type + flags
    adv[1] = 0x01  # AD type: Flags
    adv[2] = 0x06  # LE General Discoverable, BR/EDR not supported (passive-scan patterns match it)
    adv[3] = 3 + FRAME_LEN  # AD length: type + company id + payload
    adv[4] = 0xFF  # AD type: Manufacturer Specific Data
    adv[5] = COMPANY_ID & 0xFF  # company id, little-endian
    adv[6] = COMPANY_ID >> 8
    for i in range(FRAME_LEN):
        adv[7 + i] = frame[i]
    return adv


def frame_from_adv(adv):
    """The frame bytes inside a raw advertisement, or None if it carries none."""
    i = 0
    n = len(adv)
    while i + 1 < n:
        ln = adv[i]
        if ln == 0 or i + 1 + ln > n:
            return None
        if (
            adv[i + 1] == 0xFF
            and ln == 3 + FRAME_LEN
            and adv[i + 2] | (adv[i + 3] << 8) == COMPANY_ID
        ):
            return bytes(adv[i + 4 : i + 4 + FRAME_LEN])
        i += 1 + ln
    return None
