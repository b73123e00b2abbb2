"""Simulated hardware for the installer's tests and rehearsals (no board needed).

repl.SimBoard   a MicroPython board on a pseudo-terminal (raw REPL, raw-paste) running real
                MicroPython (wasm) on a directory: the real mpremote drives it
rom.RomBoard    an ESP32 / C3 / S3 / C6 serial bootloader on a pseudo-terminal: the real
                esptool detects the chip and writes flash into a file
hub.SimHub      the real hub core, store and status file on the firmware simulator's clock,
                with simulated devices built from provisioned config files
"""
