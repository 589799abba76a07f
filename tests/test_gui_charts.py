"""The charts draw what their data says: bars as long as the rates, error bars spanning the
Wilson interval, and nothing invented where no message was decided."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402

from mailstats.gui.charts import (  # noqa: E402
    HAM_COLOR,
    SPAM_COLOR,
    BarRow,
    HamSpamChart,
    HoursChart,
    Rate,
)
from mailstats.stats.indicators import wilson  # noqa: E402

pytestmark = pytest.mark.gui


@settings(derandomize=True, max_examples=300)
@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_rate_is_inside_its_wilson_interval(kn: tuple[int, int]) -> None:
    k, n = kn
    rate = Rate.of(k, n)
    assert rate is not None
    lo, hi = wilson(k, n)
    assert rate.low == pytest.approx(100 * lo, abs=1e-9)
    assert rate.high == pytest.approx(100 * hi, abs=1e-9)
    assert rate.low <= rate.pct <= rate.high
    assert rate.pct == pytest.approx(100 * k / n)


def test_no_applicable_message_is_no_rate() -> None:
    assert Rate.of(0, 0) is None


def colour_columns(img: QImage, y: int, colour: QColor) -> list[int]:
    return [x for x in range(img.width()) if QColor(img.pixel(x, y)) == colour]


def test_bars_and_error_bars_are_drawn_where_the_numbers_say(qtbot: Any) -> None:
    chart = HamSpamChart()
    qtbot.addWidget(chart)
    chart.resize(900, 400)
    ham, spam = Rate.of(50, 100), Rate.of(5, 20)
    chart.set_rows([BarRow("x.check", ham, spam), BarRow("y.none", None, Rate.of(1, 2))], "t")
    img = chart.grab().toImage()
    plot = chart._plot()
    band = int(plot.top())
    # ham bar: upper half of the first band; it ends at 50 % of the plot's width
    ham_y = band + 4 + 2
    xs = colour_columns(img, ham_y, HAM_COLOR)
    assert xs, "no ham bar drawn"
    assert abs(max(xs) - chart._x(plot, 50.0)) <= 2
    assert abs(min(xs) - plot.left()) <= 2
    spam_y = band + 4 + 14 + 2
    xs = colour_columns(img, spam_y, SPAM_COLOR)
    assert abs(max(xs) - chart._x(plot, 25.0)) <= 2
    # the whisker (darker colour) reaches the upper Wilson bound, past the bar's end
    mid = int(band + 4 + 6)
    dark = [
        x
        for x in range(img.width())
        if QColor(img.pixel(x, mid)).value() < HAM_COLOR.value() * 0.8
        and x > chart._x(plot, 50.0) + 3
    ]
    assert dark and abs(max(dark) - chart._x(plot, ham.high)) <= 3
    # the second row has no ham rate: no ham-coloured pixels in its band
    band2 = band + 34
    assert not colour_columns(img, band2 + 4 + 2, HAM_COLOR)
    assert chart.row_at(band2 + 5).check == "y.none"


def test_hours_chart_keeps_shares(qtbot: Any) -> None:
    chart = HoursChart()
    qtbot.addWidget(chart)
    chart.resize(800, 300)
    values = [0.0] * 24
    values[9] = 37.0
    chart.set_series([("ham (10 messages)", HAM_COLOR, values)], "hours")
    assert chart.y_max() == (40, 5)
    img = chart.grab().toImage()
    assert any(
        QColor(img.pixel(x, y)) == HAM_COLOR
        for x in range(0, img.width(), 2)
        for y in range(80, img.height() - 40, 2)
    )
