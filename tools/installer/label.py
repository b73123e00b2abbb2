"""Device labels: a QR code with the device's id and kind (never its key), as a PNG per
device and one printable sheet for the visit.

QR codes are made with segno: pure Python, no dependencies, writes PNG and SVG itself
(no Pillow), maintained, and it picks the smallest symbol and the strongest error
correction that fit. The payload is `CAREBEACON:1:<ID>:<KIND>` in capitals, QR's compact
alphanumeric mode (a version-2 symbol, readable from a worn sticker): the label format
version, the 8-hex-digit id the hub and the platform use, and the kind.

The sheet is one HTML page with the QR codes inline as SVG: any browser prints it at true
size on A4 (CSS millimetres), vectors stay sharp on any printer, and it needs neither a
PDF library nor an image library. Labels are 60 x 30 mm with a cut line.
"""

from __future__ import annotations

import html
from pathlib import Path

PREFIX = "CAREBEACON:1:"


def payload(device_id: int, kind: str) -> str:
    return f"{PREFIX}{device_id:08X}:{kind.upper()}"


def parse(text: str) -> tuple[int, str]:
    """(device id, kind) from a scanned label."""
    if not text.startswith(PREFIX):
        raise ValueError(f"not a carebeacon label: {text!r}")
    dev, kind = text[len(PREFIX):].split(":")
    return int(dev, 16), kind.lower()


def png(device_id: int, kind: str, path: Path, scale: int = 10) -> Path:
    import segno

    path.parent.mkdir(parents=True, exist_ok=True)
    segno.make(payload(device_id, kind), error="m").save(str(path), kind="png", scale=scale,
                                                          border=4)
    return path


def _one(rec: dict) -> str:
    import segno

    prov = rec.get("provision", {})
    dev = int(rec["device"], 16)
    svg = segno.make(payload(dev, prov.get("kind", "button")), error="m").svg_inline(
        scale=1, border=2, omitsize=True)
    e = html.escape
    where = ", ".join(x for x in (prov.get("room"), prov.get("location")) if x) or "-"
    return (f'<div class="label"><div class="qr">{svg}</div><div class="text">'
            f'<div class="id">{dev:08X}</div><div class="kind">{e(prov.get("kind", ""))}</div>'
            f'<div>{e(where)}</div><div class="small">{e(prov.get("household", ""))} - '
            f'{e(prov.get("board", ""))}</div><div class="small">carebeacon</div></div></div>')


CSS = """@page { size: A4; margin: 10mm; }
body { font-family: sans-serif; margin: 0; }
.sheet { display: flex; flex-wrap: wrap; gap: 4mm; }
.label { width: 60mm; height: 30mm; border: 0.2mm dashed #999; box-sizing: border-box;
  display: flex; align-items: center; padding: 2mm; break-inside: avoid; }
.qr svg { width: 24mm; height: 24mm; display: block; }
.text { margin-left: 3mm; font-size: 3mm; line-height: 1.25; }
.id { font-family: monospace; font-size: 5mm; font-weight: bold; }
.kind { text-transform: uppercase; font-weight: bold; }
.small { font-size: 2.4mm; color: #444; }
h1 { font-size: 4mm; } p.note { font-size: 3mm; }
@media print { h1, p.note { display: none; } }"""


def sheet(records: list[dict], path: Path, title: str) -> Path:
    """The printable sheet of every provisioned device of the visit."""
    labels = "\n".join(_one(r) for r in records if "provision" in r)
    path.write_text(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1><p class=\"note\">Print at 100 % (no fit-to-page), cut "
        "along the dashed lines, stick each label on its device. The codes hold the device "
        "id and kind only: no secret.</p>\n"
        f'<div class="sheet">\n{labels}\n</div></body></html>\n')
    return path
