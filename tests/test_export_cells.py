"""The column-wise cell formatting of messages.csv is safe_cell, value for value."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.stats.export import _cells, safe_cell

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(["=1+1", "+x", "-3", "@a", "\tx", "a\x00b", "plain", "\x85", ""]),
)


@settings(max_examples=500, derandomize=True)
@given(st.lists(VALUES, max_size=30))
def test_cells_equal_safe_cell(values: list) -> None:
    assert _cells(values) == [safe_cell(v) for v in values]
