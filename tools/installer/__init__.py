"""carebeacon's installer CLI: flash, deploy, provision, self-test and label devices on site.

`python -m tools.installer --help`; the guide is docs/installer.md. Modules: cli (the
commands), flash (esptool), deploy + plan + device (mpremote, mpy-cross), provision (identity,
key, hub registration), selftest (the on-site test against the hub's records), label (QR
codes, the printable sheet), records (the visit's records), ports, errors (plain words).
"""
