"""MPU6886 accelerometer driver for the esp32 side (M5StickC Plus2): FIFO batches in milli-g.

The accelerometer samples into its 1 KB FIFO at the app's rate while the CPU light-sleeps;
one burst read per second moves the batch out (shared/notes: read every ~1 s at 50 Hz).
"""

import time

import machine


class Mpu6886:
    """MPU6886 accelerometer into its 1 KB FIFO (accel + temperature: 8 bytes per sample).

    Registers as in the MPU-6886 datasheet (v1.1) and the MicroPython driver by
    Tuupola / Nordby: SMPLRT_DIV 0x19, CONFIG 0x1A, ACCEL_CONFIG 0x1C/0x1D,
    FIFO_EN 0x23 (bit 3 accel), USER_CTRL 0x6A (bit 6 FIFO on, bit 2 reset),
    PWR_MGMT 0x6B/0x6C, FIFO_COUNT 0x72, FIFO_R_W 0x74, WHO_AM_I 0x75 = 0x19.
    """

    def __init__(self, board):
        self._i2c = machine.I2C(0, scl=machine.Pin(board.imu_scl), sda=machine.Pin(board.imu_sda),
                                freq=board.imu_freq)
        self._addr = board.imu_addr
        self._b1 = bytearray(1)
        self._b2 = bytearray(2)
        self._fifo = bytearray(1024)
        self._mv = memoryview(self._fifo)

    def _w(self, reg, val):
        self._b1[0] = val
        self._i2c.writeto_mem(self._addr, reg, self._b1)

    def start(self, rate_hz):
        try:
            self._i2c.readfrom_mem_into(self._addr, 0x75, self._b1)
            if self._b1[0] != 0x19:
                return False
            self._w(0x6B, 0x80)  # reset
            time.sleep_ms(100)
            self._w(0x6B, 0x01)  # auto clock
            self._w(0x6C, 0x07)  # gyro off: accelerometer only (HW-CHECK current)
            self._w(0x1C, 0x18)  # +-16 g: falls peak well above 8 g at the wrist
            self._w(0x1D, 0x03)  # accel low-pass ~45 Hz
            self._w(0x1A, 0x01)  # DLPF on, so SMPLRT_DIV applies
            self._w(0x19, 1000 // rate_hz - 1)
            self._w(0x23, 0x08)  # accelerometer into the FIFO
            self._w(0x6A, 0x44)  # FIFO on, reset it
            return True
        except OSError:
            return False

    def read(self, out):
        """Samples in the FIFO into out (milli-g x, y, z); -1 if it overflowed."""
        i2c = self._i2c
        i2c.readfrom_mem_into(self._addr, 0x72, self._b2)
        count = ((self._b2[0] << 8) | self._b2[1]) & 0x1FFF
        if count >= 1024 - 8:  # full: samples were lost
            self._w(0x6A, 0x44)
            return -1
        n = count // 8
        if n > len(out) // 3:
            n = len(out) // 3
        if n == 0:
            return 0
        i2c.readfrom_mem_into(self._addr, 0x74, self._mv[: n * 8])  # burst (HW-CHECK)
        f = self._fifo
        for k in range(n):
            o = 8 * k
            for a in range(3):
                v = (f[o + 2 * a] << 8) | f[o + 2 * a + 1]
                if v & 0x8000:
                    v -= 0x10000
                out[3 * k + a] = v * 1000 // 2048  # 2048 LSB/g at +-16 g
        return n
