# HMAC-SHA256 (RFC 2104) over hashlib.sha256, because the official ESP32
# MicroPython firmware has hashlib but no `hmac` module. The padded keys are
# computed once per key so a tag costs two sha256 objects and no key work.
import hashlib

from shared.compat import const

_BLOCK = const(64)  # SHA-256 block size in bytes (FIPS 180-4)


class Hmac256:
    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)

    def digest(self, *parts):
        """Full 32-byte tag over the concatenation of `parts`."""
        inner = hashlib.sha256(self._ipad)
        for p in parts:
            inner.update(p)
        outer = hashlib.sha256(self._opad)
        outer.update(inner.digest())
        return outer.digest()


def equal(a, a_off, b, n):
    """Constant-time compare of a[a_off:a_off+n] with b[:n] (no slicing)."""
    diff = 0
    for i in range(n):
        diff |= a[a_off + i] ^ b[i]
    return diff == 0
