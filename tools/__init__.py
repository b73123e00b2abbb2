"""carebeacon tools: the installer's CLI and the demo."""
