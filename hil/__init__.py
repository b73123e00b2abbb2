"""Hardware-in-the-loop helpers: doubles that let the hub's real radio code run without hardware."""
