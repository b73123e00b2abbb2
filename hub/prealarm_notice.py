"""Which devices heard the home's pre-alarm, and which are owed the news that it is over.

While a pre-alarm runs, every acknowledgement carries setting 6 with the minutes left
(hub/home.py), and a device calls "are you all right?" for those minutes. When it ends early,
cleared by a sign of life or turned into the alarm, each device told of it is sent 6 = 0
("over", docs/protocol.md) on its acknowledgements until one carrying it is written: without
that a button in another room went on calling for up to the pre-alarm's length after the elder
had walked past a sensor. Kept in memory: after a hub restart a device still calling stops
when its minutes run out.
"""

from __future__ import annotations

from shared import frame as F


class PrealarmNotice:
    def __init__(self) -> None:
        self.told: set[int] = set()  # sent the running pre-alarm
        self.owed: set[int] = set()  # told of one that has ended, not yet sent its end

    def setting(self, dev_id: int, minutes_left: int) -> tuple[int, int]:
        """The setting an acknowledgement to `dev_id` carries; `minutes_left` 0: none runs."""
        if minutes_left:
            self.told.add(dev_id)
            self.owed.discard(dev_id)  # the running one says more than the end of the last
            return F.S_PREALARM, minutes_left
        if dev_id in self.owed:
            return F.S_PREALARM, 0
        return F.S_NONE, 0

    def ended(self) -> None:
        self.owed |= self.told
        self.told.clear()

    def heard_over(self, dev_id: int) -> None:
        """An acknowledgement carrying 6 = 0 was written to `dev_id`."""
        self.owed.discard(dev_id)
