"""Sequence numbers from committed blocks: never repeated, whatever the power does."""

import pytest
from hypothesis import given, settings, strategies as st

from shared.seqblock import SEQ_MAX, SeqBlock


def take(sb, nvs):
    """The device's order: commit the new limit (durable), then use the number."""
    if sb.needs_commit():
        nvs[0] = sb.reservation()
        sb.committed(nvs[0])
    return sb.take()


def test_fresh_device_numbers_from_one_with_one_commit_per_block():
    nvs = [0]
    sb = SeqBlock(nvs[0], block=32)
    assert sb.needs_commit() and sb.reservation() == 33
    got = [take(sb, nvs) for _ in range(64)]
    assert got == list(range(1, 65))
    assert sb.commits == 2 and nvs[0] == 65


def test_power_loss_skips_to_the_committed_limit():
    nvs = [0]
    sb = SeqBlock(nvs[0], 32)
    used = [take(sb, nvs) for _ in range(5)]
    sb = SeqBlock(nvs[0], 32)  # power loss: only NVS is left
    assert take(sb, nvs) == 33 > max(used)


def test_resume_from_rtc_memory_only_within_the_committed_block():
    sb = SeqBlock(65, 32)
    assert not sb.resume(66) and sb.next == 65, "beyond the limit: could repeat later"
    assert not sb.resume(20) and sb.next == 65, "below the block: stale memory"
    assert not sb.resume("12")
    assert sb.resume(40) and sb.next == 40
    assert SeqBlock(0, 32).resume(0) is False


def test_take_needs_a_commit_first_and_limits_never_go_down():
    sb = SeqBlock(0, 4)
    with pytest.raises(ValueError):
        sb.take()
    sb.committed(5)
    with pytest.raises(ValueError):
        sb.committed(3)


@pytest.mark.parametrize("bad", [0, 65537, 1.5, True])
def test_block_size_is_checked(bad):
    with pytest.raises(ValueError, match="block"):
        SeqBlock(0, bad)


def test_exhaustion_near_two_to_the_32():
    sb = SeqBlock(SEQ_MAX - 1, 32)
    assert sb.reservation() == SEQ_MAX + 1
    sb.committed(sb.reservation())
    assert [sb.take(), sb.take()] == [SEQ_MAX - 1, SEQ_MAX]
    with pytest.raises(ValueError, match="re-key"):
        sb.reservation()


OPS = st.lists(
    st.sampled_from(["take", "take", "take", "power", "sleep", "cut-before", "cut-after"]),
    max_size=300,
)


@settings(deadline=None, max_examples=300)
@given(ops=OPS, block=st.integers(1, 40))
def test_random_power_losses_never_repeat_a_number(ops, block):
    nvs = [0]  # what NVS holds (commits are atomic)
    rtc = None  # what RTC memory holds across deep sleep (lost with the power)
    sb = SeqBlock(nvs[0], block)
    used = set()
    power_losses = 0
    for op in ops:
        if op == "take":
            n = take(sb, nvs)
            assert n not in used, "number %d used twice" % n
            used.add(n)
        elif op == "sleep":  # deep sleep: RTC memory kept, the object rebuilt
            rtc = sb.next
            sb = SeqBlock(nvs[0], block)
            sb.resume(rtc)
        elif op == "power":
            power_losses += 1
            sb = SeqBlock(nvs[0], block)
        else:  # power lost around a commit: before it (old limit stays) or after it
            if sb.needs_commit():
                if op == "cut-after":
                    nvs[0] = sb.reservation()
            power_losses += 1
            sb = SeqBlock(nvs[0], block)
    assert all(n >= 1 for n in used)
    # Skipped numbers are bounded: at most one block per power loss (plus the open block).
    if used:
        assert max(used) - len(used) <= (power_losses + 1) * block


@settings(deadline=None, max_examples=100)
@given(n=st.integers(0, 500), block=st.integers(1, 64))
def test_commits_are_one_per_block(n, block):
    nvs = [0]
    sb = SeqBlock(0, block)
    for _ in range(n):
        take(sb, nvs)
    assert sb.commits == -(-n // block)
