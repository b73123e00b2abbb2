"""The visit report's note on what whole-home inactivity detection can see."""

from hub.config import Device
from tools.installer.coverage import inactivity_coverage


def dev(i, kind, room="", entrance=False):
    return Device(i, kind, room, "", "", 60, entrance)


def test_rooms_with_a_pir_are_named_and_the_installer_is_asked_about_the_rest():
    out = inactivity_coverage([dev(1, "pir", "kitchen"), dev(2, "pir", "bathroom"),
                               dev(3, "pir", "hall", entrance=True), dev(4, "button", "bedroom")])
    assert out[0] == "whole-home inactivity watches: PIR in bathroom, kitchen"
    assert "where the resident sits" in out[1] and "where\n" not in out[1]
    assert "fault sensor_coverage (210)" in out[2]  # the hub's own measure, from day 4
    assert len(out) == 3  # an entrance PIR is there: nothing to say about going out


def test_a_home_nothing_watches_is_called_out():
    out = inactivity_coverage([dev(1, "button", "bedroom")])
    assert out[0].endswith("nothing yet") and out[1].startswith("  ! no PIR and no bracelet")
    assert "--entrance" in out[2]


def test_a_bracelet_alone_is_not_enough_when_it_comes_off():
    out = inactivity_coverage([dev(1, "bracelet")])
    assert out[0] == "whole-home inactivity watches: the bracelet's movement"
    assert "charging" in out[1]


def test_off_on_this_hub():
    assert "off on this hub" in inactivity_coverage([dev(1, "pir", "kitchen")], enabled=False)[0]
