"""A latency histogram as a PNG, in pure Python (zlib + struct, a 5x7 bitmap font).

    histogram_png("latency.png", {"virtual clock": [812.0, 830.5, ...]}, budget_ms=1000)

Why not matplotlib: the report is written on the rig too (a Raspberry Pi), for one bar chart;
matplotlib + numpy + pillow + fonttools is ~40 MB of wheels and a second of import for it.
This draws one panel per series: bars, the budget (red line) and the p99 (blue line), axis
numbers and a title line.
"""

from __future__ import annotations

import math
import struct
import zlib

_FONT = {  # 7 rows of 5 bits, hex per row
    "0": "0E1113151911 0E", "1": "040C04040404 0E", "2": "0E1101020408 1F",
    "3": "1F0204020111 0E", "4": "02060A121F02 02", "5": "1F101E010111 0E",
    "6": "0608101E1111 0E", "7": "1F0102040808 08", "8": "0E11110E1111 0E",
    "9": "0E11110F0102 0C", "a": "00000E010F11 0F", "b": "101016191111 1E",
    "c": "00000E101011 0E", "d": "01010D131111 0F", "e": "00000E111F10 0E",
    "f": "0609081C0808 08", "g": "000F11110F01 0E", "h": "101016191111 11",
    "i": "04000C040404 0E", "j": "020006020212 0C", "k": "101012141814 12",
    "l": "0C0404040404 0E", "m": "00001A151511 11", "n": "000016191111 11",
    "o": "00000E111111 0E", "p": "00001E111E10 10", "q": "00000D130F01 01",
    "r": "000016191010 10", "s": "00000E100E01 1E", "t": "08081C080809 06",
    "u": "000011111113 0D", "v": "00001111110A 04", "w": "000011111515 0A",
    "x": "0000110A040A 11", "y": "000011110F01 0E", "z": "00001F020408 1F",
    " ": "000000000000 00", ".": "000000000C0C 00", ",": "000000000C04 08",
    ":": "000C0C000C0C 00", "-": "0000001F0000 00", ">": "080402010204 08",
    "<": "020408100804 02", "(": "020408080804 02", ")": "080402020204 08",
    "/": "010102040810 10", "%": "181902040813 03", "=": "00001F001F00 00",
    "+": "0004041F0404 00", "_": "000000000000 1F", "|": "040404040404 04",
}
WHITE, BLACK, GREY = (255, 255, 255), (40, 40, 40), (190, 190, 190)
BARS, RED, BLUE = ((70, 130, 180), (230, 140, 50)), (200, 30, 30), (30, 60, 200)


def _glyph(ch: str) -> list[int]:
    h = _FONT.get(ch.lower(), _FONT[" "]).replace(" ", "")
    return [int(h[i:i + 2], 16) for i in range(0, 14, 2)]


class Canvas:
    def __init__(self, w: int, h: int):
        self.w, self.h = w, h
        self.px = bytearray(WHITE * (w * h))

    def rect(self, x0: int, y0: int, x1: int, y1: int, rgb) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.w, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h, max(y0, y1))
        row = bytes(rgb) * (x1 - x0)
        for y in range(y0, y1):
            i = (y * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def text(self, x: int, y: int, s: str, rgb=BLACK, scale: int = 2) -> int:
        for ch in s:
            for r, bits in enumerate(_glyph(ch)):
                for c in range(5):
                    if bits & (16 >> c):
                        self.rect(x + c * scale, y + r * scale, x + (c + 1) * scale,
                                  y + (r + 1) * scale, rgb)
            x += 6 * scale
        return x

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        ihdr = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(q / 100 * len(v)) - 1))]


def histogram_png(path, series: dict[str, list[float]], budget_ms: float,
                  title: str = "press -> platform latency") -> None:
    series = {k: v for k, v in series.items() if v} or {"no samples": []}
    allv = [x for v in series.values() for x in v]
    lo = math.floor(min(allv, default=0) / 100) * 100
    hi = math.ceil(max(allv + [budget_ms]) / 100) * 100 + 100
    nbins = 60
    bw = (hi - lo) / nbins
    W, PH, L, R, T = 900, 260, 70, 20, 40
    c = Canvas(W, T + PH * len(series) + 10)
    c.text(L, 10, f"{title} (ms)", BLACK, 2)
    for k, (name, vals) in enumerate(series.items()):
        top = T + k * PH
        x0, x1, y0, y1 = L, W - R, top + 62, top + PH - 36
        counts = [0] * nbins
        for v in vals:
            counts[min(nbins - 1, max(0, int((v - lo) / bw)))] += 1
        cmax = max(counts + [1])
        c.rect(x0, y1, x1, y1 + 2, BLACK)
        c.rect(x0 - 2, y0, x0, y1 + 2, BLACK)

        def xpos(v: float, x0=x0, x1=x1) -> int:
            return int(x0 + (v - lo) / (hi - lo) * (x1 - x0))
        for i, n in enumerate(counts):
            if n:
                h = max(1, int(n / cmax * (y1 - y0)))
                c.rect(xpos(lo + i * bw) + 1, y1 - h, xpos(lo + (i + 1) * bw), y1, BARS[k % 2])
        step = 100 if hi - lo <= 1500 else 500
        for t in range(int(lo), int(hi) + 1, step):
            c.rect(xpos(t), y1 + 2, xpos(t) + 1, y1 + 7, BLACK)
            c.text(xpos(t) - 9, y1 + 10, str(t), BLACK, 1)
        c.text(x0 - 60, y0, f"{cmax}", BLACK, 1)
        c.text(x0 - 60, y1 - 8, "0", BLACK, 1)
        c.rect(xpos(budget_ms), y0 - 5, xpos(budget_ms) + 2, y1, RED)
        c.text(xpos(budget_ms) + 6, y0, f"budget {budget_ms:g}", RED, 1)
        c.text(x0, top + 14, name, BLACK, 2)
        stats = f"n={len(vals)}"
        if vals:
            p99 = _p(vals, 99)
            c.rect(xpos(p99), y0, xpos(p99) + 2, y1, BLUE)
            c.text(xpos(p99) + 6, y0 + 12, "p99", BLUE, 1)
            stats += (f"  p50={_p(vals, 50):.0f}  p99={p99:.0f}  max={max(vals):.0f}"
                      f"  over budget={sum(v > budget_ms for v in vals)}")
        c.text(x0, top + 36, stats, BLACK, 2)
    with open(path, "wb") as fh:
        fh.write(c.png())
