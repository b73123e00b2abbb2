"""carebeacon hub: receives device frames, stores them durably, forwards them to the platform."""
