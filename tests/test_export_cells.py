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


def _written(column: object) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows([cell] for cell in column)  # type: ignore[attr-defined]
    return out.getvalue()


# Columns as modules fill them: one kind of value with gaps, or anything mixed.
COLUMNS = st.one_of(
    st.lists(st.one_of(st.none(), st.text()), max_size=30),
    st.lists(st.one_of(st.none(), st.integers(), st.floats()), max_size=30),
    st.lists(
        st.one_of(st.none(), st.sampled_from(["a", "b.example", "=x", "a\nb", "\u200b", ""])),
        max_size=30,
    ),
    st.lists(VALUES, max_size=30),
)


@settings(max_examples=800, derandomize=True, deadline=None)
@given(COLUMNS)
def test_column_writes_what_safe_cell_gives(values: list) -> None:
    """messages.csv hands some columns to the csv module as they are: the bytes written must
    be those of safe_cell, value for value (formulas, controls, newlines, numbers, gaps)."""
    from mailstats.stats.export import _column

    assert _written(_column(values)) == _written(safe_cell(v) for v in values)
