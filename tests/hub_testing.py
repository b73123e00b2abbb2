"""Test data shared by the hub and installer tests."""

# The smallest valid hub.toml: a test hub with no devices, talking plain MQTT on localhost.
MINIMAL_HUB_TOML = """[hub]
id = "hub-a"
county = "test-county"
household = "HH-7"
data_dir = "data"

[platform]
url = "mqtt://localhost:1883"
"""
