"""shared/inactivity.py configuration and arguments: bad values refused naming the argument."""

import pytest
from inactivity_testing import H, M

from shared.inactivity import Inactivity


@pytest.mark.parametrize(
    "name,value",
    [
        ("floor_ms", 0),
        ("floor_ms", 51 * H),
        ("ceiling_ms", 10 * M),  # below the floor
        ("ceiling_ms", 51 * H),
        ("default_ms", 0),
        ("prealarm_ms", -1),
        ("prealarm_ms", 31 * M),
        ("away_after_ms", 0),
        ("away_after_ms", 3 * H),
        ("away_max_ms", H - 1),
        ("away_max_ms", 144 * H + 1),
        ("door_away", 1),
        ("days", 0),
        ("days", 57),
        ("min_days", 15),
        ("rank", 4),
        ("rank", 0),
        ("neighbours", 5),
        ("margin_pct", 99),
        ("margin_pct", 401),
        ("buffer_ms", -1),
        ("floor_ms", 1_800_000.0),  # no floats
        ("days", True),
    ],
)
def test_bad_config_names_the_argument(name, value):
    with pytest.raises(ValueError, match=name):
        Inactivity(**{name: value})


def test_rank_cannot_exceed_min_days():
    with pytest.raises(ValueError, match="rank"):
        Inactivity(min_days=1, rank=2)


def test_unknown_source_is_rejected():
    with pytest.raises(ValueError, match="source"):
        Inactivity().activity(0, 0, 4)
