"""hil/real/console.py, the real rig's DUT console reader, on real pseudo-terminals.

The reader is the real one (pyserial opening a tty, its own thread); only the board is
played by the test (tests/rig_pty.py): bytes as an ESP32 console sends them, CR LF, ROM
chatter, invalid UTF-8, lines split across reads, the port leaving the bus (C3 deep sleep,
power cut) and coming back under the same name. What it parses is checked as rig.py
consumes it: RealSession.patterns() and asleep() are Console.patterns() and asleep().
What the board itself prints (the firmware's traces, the rig hooks' marks) is produced by
the device code in tests/hil/test_real_rig_device.py.
"""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("serial", reason="pyserial (a project dependency) is not installed")

from hil.real.console import Console  # noqa: E402
from rig_pty import DutPort, wait_until  # noqa: E402


@pytest.fixture
def dut(tmp_path):
    port = DutPort(tmp_path / "ttyDUT").plug()
    consoles: list[Console] = []

    def console(**kw) -> Console:
        con = Console(str(port.path), **kw).start()
        consoles.append(con)
        return con

    port.console = console
    yield port
    for con in consoles:
        con.close()
    port.close()


def _texts(con: Console, since: float = 0) -> list[str]:
    return [text for _t, text, _m in con.since(since)]


def test_lines_are_kept_in_order_whole_and_decoded_as_the_board_sent_them(dut):
    con = dut.console()
    dut.wait_open(con)
    rom = b"\x00\xffESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\n"
    dut.send(rom + b"carebeacon: rig boot 0\r\ncarebeacon: pat")  # a line cut between reads
    wait_until(lambda: len(con.lines) == 3, what="three whole lines")
    time.sleep(0.3)  # more reads (0.2 s timeout) pass: the cut line must still be pending
    assert _texts(con) == ["\x00\ufffdESP-ROM:esp32c3-api1-20210207", "Build:Feb  7 2021",
                           "carebeacon: rig boot 0"]
    long = "carebeacon: " + "x" * 600
    z = "Zürich".encode()
    dut.send(b"tern 3\r\n" + long.encode() + b"\r\n" + z[:2])
    time.sleep(0.3)
    dut.send(z[2:] + b"\n")  # a UTF-8 character split across writes; LF alone also ends a line
    wait_until(lambda: len(con.lines) == 6, what="six lines")
    assert _texts(con)[3:] == ["carebeacon: pattern 3", long, "Zürich"]
    stamps = [t for t, _text in con.lines]
    assert stamps == sorted(stamps)
    assert stamps[3] - stamps[2] >= 0.25, "a line is stamped when it is complete"


def test_a_line_is_stamped_when_it_arrives(dut):
    """Timestamps order the console against the rig's clock (patterns since a press, the
    last sleep mark): a line must not wait for the read timeout (0.2 s) to be stamped."""
    con = dut.console()
    dut.wait_open(con)
    delays = []
    for k in range(7):
        sent = time.monotonic()
        dut.send(b"carebeacon: pattern 3\r\n")
        wait_until(lambda k=k: len(con.lines) > k, what=f"line {k}")
        delays.append(con.lines[k][0] - sent)
        time.sleep(0.05)
    assert sorted(delays)[3] < 0.1, f"median {sorted(delays)[3] * 1000:.0f} ms"


def test_since_and_wait_for_select_by_time_and_pattern(dut):
    con = dut.console()
    dut.wait_open(con)
    dut.send(b"carebeacon: pattern 1\r\n")
    wait_until(lambda: con.lines, what="the first line")
    t_mid = time.monotonic()
    dut.send(b"carebeacon: pattern 3\r\nnoise\r\ncarebeacon: pattern 4\r\n")
    t, m = con.wait_for(r"carebeacon: pattern (\d+)", since=t_mid, timeout=5)
    assert m.group(1) == "3" and t >= t_mid, "the first match at or after `since`"
    wait_until(lambda: len(con.lines) == 4, what="four lines")
    assert [m.group(1) for _t, _s, m in con.since(t_mid, r"pattern (\d+)")] == ["3", "4"]
    assert [s for _t, s, _m in con.since(0, "noise")] == ["noise"]
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="rig deep_sleep"):
        con.wait_for(r"carebeacon: rig deep_sleep", since=0, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2


def test_patterns_are_named_as_the_firmware_numbers_them(dut):
    from firmware.feedback import NAMES

    con = dut.console()
    dut.wait_open(con)
    dut.send(b"carebeacon: pattern 3\r\n")
    wait_until(lambda: con.lines, what="the first line")
    t_mid = time.monotonic()
    dut.send(b"carebeacon: pattern 4\r\n"
             b"carebeacon: pattern 0\r\n"      # no pattern has number 0
             b"carebeacon: pattern 99\r\n"     # none this high (another firmware?): skipped
             b"carebeacon: pattern x\r\n"
             b"carebeacon: bad_ack 2\r\n"
             b"\x1b[0;32mI (312) cpu_start\x1b[0mcarebeacon: pattern 5\r\n"  # glued to chatter
             + b"".join(b"carebeacon: pattern %d\r\n" % n for n in range(1, len(NAMES))))
    wait_until(lambda: len(con.lines) == 7 + len(NAMES) - 1, what="every line")
    assert con.patterns(t_mid) == ["CALLING", "HELP", *NAMES[1:]]
    assert con.patterns(0)[:2] == ["RECEIVED", "CALLING"]
    assert con.patterns(time.monotonic() + 1) == []


def test_asleep_is_the_last_rig_mark(dut):
    con = dut.console()
    dut.wait_open(con)
    assert not con.asleep(), "nothing printed yet: not known to sleep"
    for line, asleep in ((b"carebeacon: rig boot 0", False),
                         (b"carebeacon: rig deep_sleep 30000", True),
                         (b"carebeacon: pattern 1", True),  # other lines do not wake it
                         (b"carebeacon: rig boot 2", False)):
        n = len(con.lines)
        dut.send(line + b"\r\n")
        wait_until(lambda n=n: len(con.lines) > n, what=line.decode())
        assert con.asleep() is asleep, line


def test_a_line_cut_by_the_port_going_away_is_kept_and_not_glued_to_the_next_boot(dut):
    """The C3's USB leaves the bus in deep sleep and at a power cut: its last line may lack
    its newline. It must count (the DUT is asleep) and must not run into the ROM's first
    line after the wake."""
    seen = []
    con = dut.console(on_line=lambda t, text: seen.append(text))
    dut.wait_open(con)
    dut.send(b"carebeacon: pattern 3\r\ncarebeacon: rig deep_sleep 30000")
    wait_until(lambda: con.lines, what="the first line")
    assert not con.asleep()
    t_gone = time.monotonic()
    dut.unplug()
    wait_until(con.asleep, what="the cut-off deep_sleep mark")
    assert con.lines[-1][0] >= t_gone, "stamped when the port went"
    assert not con.write_line("I 1,2,3"), "no port: nothing written"
    time.sleep(0.5)  # the reader retries opening meanwhile (the link is gone)
    assert con.reopens == 1
    dut.plug()
    dut.wait_open(con, 2)
    dut.send(b"ESP-ROM:esp32c3-api1-20210207\r\ncarebeacon: rig boot 2\r\n"
             b"carebeacon: pattern 4\r\n")
    wait_until(lambda: len(con.lines) == 5, what="the lines after the wake")
    assert _texts(con) == ["carebeacon: pattern 3", "carebeacon: rig deep_sleep 30000",
                           "ESP-ROM:esp32c3-api1-20210207", "carebeacon: rig boot 2",
                           "carebeacon: pattern 4"]
    assert seen == _texts(con), "on_line sees every line once, in order"
    assert not con.asleep() and con.patterns(0) == ["RECEIVED", "CALLING"]


def test_write_line_reaches_the_board_and_follows_it_across_a_replug(dut):
    dut.unplug()
    con = dut.console()
    assert not con.write_line("I 0,0,1000"), "no port yet"
    dut.plug()
    dut.wait_open(con)
    assert con.write_line("I 1000,8,-3;998,6,-1")
    assert dut.received(21) == b"I 1000,8,-3;998,6,-1\n", "one LF, no CR added"
    dut.unplug()
    wait_until(lambda: not con.write_line("I 1,2,3"), what="the write to fail")
    dut.plug()
    dut.wait_open(con, 2)
    assert con.write_line("I 4,5,6")
    assert dut.received(8) == b"I 4,5,6\n"


def test_a_board_that_stops_reading_fails_writes_instead_of_hanging_the_rig(dut):
    con = dut.console()
    dut.wait_open(con)
    line = "I " + ";".join(["1000,8,-3"] * 100)  # nobody reads: the tty's buffer fills up
    started = time.monotonic()
    for _ in range(1000):
        if not con.write_line(line):
            break
    else:
        pytest.fail("1 MB written into a pty nobody reads")
    assert time.monotonic() - started < 3, "the write gave up (write_timeout)"
    dut.send(b"carebeacon: rig boot 0\r\n")
    assert con.wait_for("rig boot", since=0, timeout=5), "and the reader still reads"


def test_a_port_missing_at_start_is_opened_when_it_appears(dut, tmp_path):
    dut.unplug()  # the DUT is still off (powered up by the rig after the reader starts)
    con = dut.console()
    time.sleep(0.5)
    assert con.reopens == 0 and con.lines == [] and con._thread.is_alive()
    dut.plug()
    dut.wait_open(con)
    dut.send(b"carebeacon: rig boot 0\r\n")
    assert con.wait_for("rig boot", since=0, timeout=5)


def test_close_stops_the_reader_and_releases_the_port(dut):
    con = dut.console()
    dut.wait_open(con)
    dut.send(b"carebeacon: rig boot 0\r\n")
    wait_until(lambda: con.lines, what="a line")
    pts = os.readlink(dut.path)
    assert _fds_on(pts) == 2, "the board's own end and the console's"
    started = time.monotonic()
    con.close()
    assert time.monotonic() - started < 1.5 and not con._thread.is_alive()
    assert _fds_on(pts) == 1, "the console closed its end"
    dut.send(b"carebeacon: pattern 3\r\n")
    time.sleep(0.3)
    assert _texts(con) == ["carebeacon: rig boot 0"], "nothing read after close"


def _fds_on(path: str) -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == path
        except OSError:  # the listing's own fd, gone by now
            pass
    return n
