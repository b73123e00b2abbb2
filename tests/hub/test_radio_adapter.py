"""hub/radio_adapter.py: the adapter the radio uses, from what BlueZ lists (the radio's own
tests, test_radio_watchdog.py, drive it through a BlueZ double)."""

from hub.radio_adapter import choose_adapter
from hub.radio_bluez import AdapterInfo

HCI0 = AdapterInfo("hci0", "00:1A:7D:DA:71:13", True, False)
HCI1 = AdapterInfo("hci1", "00:1A:7D:DA:71:14", True, False)


def test_the_adapter_used_before_is_followed_by_its_mac_under_a_new_name():
    replugged = AdapterInfo("hci2", HCI0.address, True, False)
    assert choose_adapter({"hci1": HCI1, "hci2": replugged}, "hci0", HCI0.address,
                          "hci0") == (replugged, "")


def test_else_the_configured_name_else_the_only_adapter_with_a_warning():
    assert choose_adapter({"hci0": HCI0, "hci1": HCI1}, "hci1", None, None) == (HCI1, "")
    chosen, note = choose_adapter({"hci1": HCI1}, "hci0", None, None)
    assert chosen is HCI1 and note == ("adapter hci0 not found; using the only adapter, "
                                       "hci1 (00:1A:7D:DA:71:14)")


def test_none_says_what_was_wanted_and_what_is_there():
    assert choose_adapter({}, "hci0", None, None) == (
        None, "adapter hci0 not found; adapters present: none")
    other = AdapterInfo("hci3", "00:00:00:00:00:03", True, False)
    assert choose_adapter({"hci1": HCI1, "hci3": other}, "hci0", HCI0.address, "hci0") == (
        None, "adapter hci0 (00:1A:7D:DA:71:13) not found; adapters present: hci1, hci3")
