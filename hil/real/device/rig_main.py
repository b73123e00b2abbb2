"""/main.py of a rig's DUT (MicroPython): the rig's hooks, then the firmware's own main.py.

Deploy (docs/hil.md): firmware/main.py -> /carebeacon_main.py, this file -> /main.py,
rig_hooks.py -> /rig_hooks.py. The firmware latches the reset cause and wake reason as its
first lines; both are kept by the chip until read, so the few ms spent here change nothing
but the press latency (measured by the rig as part of the path).
"""

import rig_hooks

rig_hooks.install()
exec(open("/carebeacon_main.py").read(), {"__name__": "__main__"})
