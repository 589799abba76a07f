"""Overall progress weighs folders by their messages (plain Python, no window)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.accounts.config import Account
from mailstats.gui.progress import ProgressTracker
from mailstats.run.results import Progress


def archive() -> Account:
    return Account(name="archive", path="/m", ham=["INBOX"], spam=["Junk"], sent=["Sent"])


def test_a_small_first_folder_is_a_small_share() -> None:
    t = ProgressTracker([archive()])
    t.set_sizes({("archive", "Sent"): 300, ("archive", "INBOX"): 60000, ("archive", "Junk"): 40000})
    t.update(Progress("archive", "Sent", "sync", 300, 300))
    t.update(Progress("archive", "Sent", "done", 300, 300))
    assert abs(t.fraction - 300 / 100300) < 1e-9  # not a third
    assert t.next_folder("archive", "Sent") == "INBOX"
    assert t.next_folder("archive", "Junk") is None


def test_before_the_counts_arrive_seen_totals_and_their_average_stand_in() -> None:
    t = ProgressTracker([archive()])
    t.update(Progress("archive", "Sent", "sync", 100, 300))
    # Sent counts 300; INBOX and Junk, not seen yet, count the average of what is known
    assert abs(t.fraction - (300 * 100 / 300 / 2) / 900) < 1e-9


@settings(derandomize=True, max_examples=200)
@given(
    st.lists(st.integers(0, 10**6), min_size=3, max_size=3),
    st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.floats(0, 1)), max_size=30),
)
def test_fraction_stays_in_range_and_ends_at_one(
    sizes: list[int], events: list[tuple[int, bool, float]]
) -> None:
    folders = ["Sent", "INBOX", "Junk"]
    t = ProgressTracker([archive()])
    t.set_sizes({("archive", f): n for f, n in zip(folders, sizes, strict=True)})
    last = 0.0
    done = {f: {"sync": 0.0, "analyse": 0.0} for f in folders}
    for i, sync, frac in events:
        phase = "sync" if sync else "analyse"
        done[folders[i]][phase] = max(done[folders[i]][phase], frac)
        n = sizes[i]
        t.update(Progress("archive", folders[i], phase, round(done[folders[i]][phase] * n), n))
        assert 0.0 <= t.fraction <= 1.0 + 1e-12
        assert t.fraction >= last - 1e-12  # never goes backwards
        last = t.fraction
    for f, n in zip(folders, sizes, strict=True):
        t.update(Progress("archive", f, "done", n, n))
    assert abs(t.fraction - 1.0) < 1e-12


def test_no_share_is_claimed_while_the_folders_are_being_counted() -> None:
    t = ProgressTracker([archive()])
    t.sizes_pending = True
    t.update(Progress("archive", "Sent", "done", 300, 300))
    assert not t.known  # Sent alone would read as a third of the run
    t.set_sizes({("archive", "INBOX"): 60000, ("archive", "Junk"): 40000})
    assert t.known and t.fraction < 0.01
