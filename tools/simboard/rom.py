"""A simulated ESP32 / ESP32-C3 / -S3 / -C6 serial bootloader on a pseudo-terminal, for esptool.

    with RomBoard("ESP32-C3", flash_file=tmp_path / "flash.bin") as rom:
        esptool ... --port rom.port --before no-reset --after no-reset write-flash 0x0 fw.bin

What it speaks (Espressif's serial protocol as esptool uses it): SLIP framing; requests
`00 op len(2) chk(4) data`, responses `01 op len(2) val(4) data status`; SYNC answered
eight times with a non-zero value (the ROM; the stub answers 0); READ_REG / WRITE_REG on a
register file; GET_SECURITY_INFO (chip id) on the C3 / S3 / C6 and "invalid command" on
the ESP32 (esptool then reads the chip-detect magic register); MEM_BEGIN / MEM_DATA /
MEM_END to load the stub flasher, then "OHAI" and the stub's behaviour (2 status bytes,
raw MD5, ERASE_FLASH, ERASE_REGION); SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE;
FLASH_BEGIN / DATA / END and FLASH_DEFL_BEGIN / DATA / END (zlib) into a flash image file;
SPI_FLASH_MD5. SPI flash commands esptool runs through the SPI peripheral's registers are
answered for RDID (a 4 MB Winbond part) and SFDP; others complete with 0. Data checksums
are checked as the ROM does.

Register addresses and chip constants come from esptool's own target classes: this proves
esptool's protocol flow end to end, not the register map (only silicon does that).
`mode="app"` is a chip that is running its application, not its bootloader: it prints a
boot log and never answers, which is what an installer meets when the board did not enter
download mode.
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from pathlib import Path

from tools.simboard.pty import PtyDevice

CHIPS = {"ESP32": "esp32", "ESP32-C3": "esp32c3", "ESP32-S3": "esp32s3", "ESP32-C6": "esp32c6"}
SPI_CMD_USR = 1 << 18
JEDEC_ID = 0x1640EF  # Winbond W25Q32: 4 MB
FLASH_SIZE = 4 * 1024 * 1024
SYNC_VAL = 0x20120707
ST_BAD_CHECKSUM, ST_INVALID_CMD, ST_BAD_DATA = 0x07, 0x05, 0x09


def checksum(data: bytes) -> int:
    c = 0xEF
    for b in data:
        c ^= b
    return c


def make_image(chip: str, size: int = 8192, seed: int = 1) -> bytes:
    """A small, well-formed ESP image (header, extended header naming the chip, one segment,
    checksum) standing in for a MicroPython firmware file in tests and rehearsals."""
    from esptool.targets import CHIP_DEFS

    cls = CHIP_DEFS[CHIPS[chip]]
    body = random.Random(seed).randbytes(max(16, size - 64) & ~3)
    hdr = struct.pack("<BBBBI", 0xE9, 1, 2, 0x20, 0x40080000)
    ext = struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", cls.IMAGE_CHIP_ID, 0, 0, 0, b"\0" * 4, 0)
    seg = struct.pack("<II", 0x3FFB0000, len(body)) + body
    img = hdr + ext + seg
    pad = 15 - (len(img) % 16)
    return img + b"\0" * pad + bytes([checksum(body)])


class RomBoard(PtyDevice):
    def __init__(self, chip: str = "ESP32-C3", *, flash_file: str | Path | None = None,
                 mode: str = "download"):
        super().__init__()
        from esptool.targets import CHIP_DEFS

        self.chip = chip
        self.cls = CHIP_DEFS[CHIPS[chip]]
        self.mode = mode
        self.flash_file = Path(flash_file) if flash_file else None
        self.flash = bytearray(b"\xff" * FLASH_SIZE)
        if self.flash_file and self.flash_file.exists():
            self.flash[:] = self.flash_file.read_bytes()[:FLASH_SIZE].ljust(FLASH_SIZE, b"\xff")
        self.regs: dict[int, int] = {}
        self.stub = False
        self.log: list[str] = []  # command names in order (tests)
        self.erased = False
        self._write: dict | None = None  # the flash write in progress
        self._preset_registers()

    def _preset_registers(self) -> None:
        c = self.cls
        if c.USES_MAGIC_VALUE:
            self.regs[c.CHIP_DETECT_MAGIC_REG_ADDR] = c.MAGIC_VALUE
        # a 40 MHz crystal as esptool estimates it from the UART divider at 115200 baud
        div = getattr(c, "XTAL_CLK_DIVIDER", 1)
        self.regs[c.UART_CLKDIV_REG] = int(40e6 * div / 115200)

    # -- the serial line ----------------------------------------------------------------------
    def run(self) -> None:
        if self.mode == "app":
            self.write(b"ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 "
                       b"(SPI_FAST_FLASH_BOOT)\r\nMicroPython v1.27.0 on board\r\n>>> ")
            while True:
                self.drain()
                if self._closed.wait(0.05):
                    return
        while True:
            pkt = self._read_slip()
            if pkt is not None:
                self._handle(pkt)

    def _read_slip(self) -> bytes | None:
        while self.getc() != 0xC0:
            pass
        out = bytearray()
        while True:
            c = self.getc()
            if c == 0xC0:
                if not out:
                    continue  # two delimiters in a row: start again
                return bytes(out)
            if c == 0xDB:
                e = self.getc()
                c = {0xDC: 0xC0, 0xDD: 0xDB}.get(e or 0, e)
            out.append(c or 0)

    def _send(self, payload: bytes) -> None:
        body = payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
        self.write(b"\xc0" + body + b"\xc0")

    def _reply(self, op: int, val: int = 0, data: bytes = b"", status: int = 0,
               error: int = 0) -> None:
        st = bytes([1 if status else 0, error]) + (b"" if self.stub else b"\0\0")
        body = data + st
        self._send(struct.pack("<BBHI", 1, op, len(body), val) + body)

    # -- commands -----------------------------------------------------------------------------
    def _handle(self, pkt: bytes) -> None:
        if len(pkt) < 8 or pkt[0] != 0:
            return
        _, op, size, chk = struct.unpack("<BBHI", pkt[:8])
        data = pkt[8:8 + size]
        name = {v: k for k, v in self.cls.ESP_CMDS.items()}.get(op, hex(op))
        self.log.append(name)
        fn = getattr(self, "_op_" + name.lower(), None)
        if fn is None or (name.startswith(("ERASE", "READ_FLASH")) and not self.stub):
            self._reply(op, status=1, error=ST_INVALID_CMD)
            return
        fn(op, data, chk)

    def _op_sync(self, op, data, chk):
        for _ in range(8):
            self._reply(op, 0 if self.stub else SYNC_VAL)

    def _op_read_reg(self, op, data, chk):
        (addr,) = struct.unpack("<I", data[:4])
        self._reply(op, self.regs.get(addr, 0) & ~(SPI_CMD_USR if addr == self._spi(0) else 0))

    def _op_write_reg(self, op, data, chk):
        addr, value, mask, _delay = struct.unpack("<IIII", data[:16])
        self.regs[addr] = (self.regs.get(addr, 0) & ~mask) | (value & mask)
        if addr == self._spi(0) and value & SPI_CMD_USR:
            self._spi_command()
        self._reply(op)

    def _op_get_security_info(self, op, data, chk):
        if self.cls.USES_MAGIC_VALUE:  # the ESP32 ROM has no such command
            self._reply(op, status=1, error=ST_INVALID_CMD)
            return
        info = struct.pack("<IBBBBBBBBII", 0, 0, *([0] * 7), self.cls.IMAGE_CHIP_ID, 0)
        self._reply(op, data=info)

    def _op_mem_begin(self, op, data, chk):
        self._reply(op)

    def _op_mem_data(self, op, data, chk):
        size = struct.unpack("<I", data[:4])[0]
        ok = checksum(data[16:16 + size]) == chk
        self._reply(op, status=0 if ok else 1, error=0 if ok else ST_BAD_CHECKSUM)

    def _op_mem_end(self, op, data, chk):
        self._reply(op)
        self.stub = True  # the uploaded stub flasher starts and greets
        self._send(b"OHAI")

    def _op_spi_attach(self, op, data, chk):
        self._reply(op)

    def _op_spi_set_params(self, op, data, chk):
        self._reply(op)

    def _op_change_baudrate(self, op, data, chk):
        self._reply(op)

    def _op_erase_flash(self, op, data, chk):
        self.flash[:] = b"\xff" * FLASH_SIZE
        self.erased = True
        self._save()
        self._reply(op)

    def _op_erase_region(self, op, data, chk):
        offset, size = struct.unpack("<II", data[:8])
        self.flash[offset:offset + size] = b"\xff" * size
        self._save()
        self._reply(op)

    def _op_flash_begin(self, op, data, chk, deflate=False):
        size, _blocks, _bs, offset = struct.unpack("<IIII", data[:16])
        if offset + size > FLASH_SIZE:
            self._reply(op, status=1, error=ST_BAD_DATA)
            return
        end = min(FLASH_SIZE, (offset + size + 0xFFF) & ~0xFFF)  # whole 4 KB sectors
        self.flash[offset:end] = b"\xff" * (end - offset)  # ROM: up front; stub: as it writes
        self._write = {"offset": offset, "pos": offset,
                       "z": zlib.decompressobj() if deflate else None}
        self._reply(op)

    def _op_flash_defl_begin(self, op, data, chk):
        self._op_flash_begin(op, data, chk, deflate=True)

    def _op_flash_data(self, op, data, chk):
        size = struct.unpack("<I", data[:4])[0]
        block = data[16:16 + size]
        w = self._write
        if w is None or checksum(block) != chk:
            self._reply(op, status=1, error=ST_BAD_CHECKSUM if w else ST_BAD_DATA)
            return
        raw = w["z"].decompress(block) if w["z"] else block
        self.flash[w["pos"]:w["pos"] + len(raw)] = raw
        w["pos"] += len(raw)
        self._reply(op)

    def _op_flash_defl_data(self, op, data, chk):
        self._op_flash_data(op, data, chk)

    def _op_flash_end(self, op, data, chk):
        self._save()
        self._reply(op)

    def _op_flash_defl_end(self, op, data, chk):
        self._op_flash_end(op, data, chk)

    def _op_spi_flash_md5(self, op, data, chk):
        addr, size = struct.unpack("<II", data[:8])
        digest = hashlib.md5(self.flash[addr:addr + size]).digest()
        self._reply(op, data=digest if self.stub else digest.hex().encode())

    # -- SPI flash through the SPI peripheral's registers -------------------------------------
    def _spi(self, offs: int) -> int:
        return self.cls.SPI_REG_BASE + offs

    def _spi_command(self) -> None:
        c = self.cls
        opcode = self.regs.get(self._spi(c.SPI_USR2_OFFS), 0) & 0xFF
        w0 = self._spi(c.SPI_W0_OFFS)
        if opcode == 0x9F:
            self.regs[w0] = JEDEC_ID
        elif opcode == 0x5A:  # SFDP: the signature at 0, the vendor id at 0x10
            addr = self.regs.get(self._spi(0x04), 0)
            addr = addr >> 8 if getattr(c, "SPI_ADDR_REG_MSB", True) else addr
            self.regs[w0] = 0x50444653 if addr == 0 else JEDEC_ID & 0xFF
        self.regs[self._spi(0)] = 0  # done

    def _save(self) -> None:
        if self.flash_file is not None:
            self.flash_file.write_bytes(self.flash)
