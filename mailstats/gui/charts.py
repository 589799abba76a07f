"""The results screen's two charts, painted with QPainter.

Why not QtCharts: it is the only reason the app would need PySide6-Addons (a second large
wheel, and ~100 MB more in the stand-alone build), and its bar series cannot draw error bars,
which these charts must have: a rate measured on 12 messages is not the rate measured on
12,000, and the Wilson 95 % interval shows how far each bar can be trusted. Painting two
simple charts is less code than working around that.

Both widgets keep their data in plain attributes (`rows`, `series`), so tests can read what
is drawn without looking at pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

HAM_COLOR = QColor("#1f77b4")
SPAM_COLOR = QColor("#d95f02")
SENT_COLOR = QColor("#7570b3")
ROLE_COLORS = {"ham": HAM_COLOR, "spam": SPAM_COLOR, "sent": SENT_COLOR}
GRID = QColor("#d8d8d8")
TEXT = QColor("#202020")
ROW_HEIGHT = 34
BAR_HEIGHT = 12


@dataclass
class Rate:
    """A share in percent with its Wilson 95 % interval (also in percent)."""

    pct: float
    low: float
    high: float
    matched: int
    applicable: int

    @classmethod
    def of(cls, matched: int, applicable: int) -> Rate | None:
        from mailstats.stats.indicators import wilson

        if applicable <= 0:
            return None
        bounds = wilson(matched, applicable) or (0.0, 1.0)
        pct = 100.0 * matched / applicable
        # the interval contains the rate; wilson's bounds carry float noise at k = 0 or n
        low, high = min(100.0 * bounds[0], pct), max(100.0 * bounds[1], pct)
        return cls(pct, low, high, matched, applicable)

    def words(self) -> str:
        return (
            f"{self.pct:.1f} % ({self.matched:,} of {self.applicable:,}; "
            f"95 % interval {self.low:.1f}–{self.high:.1f} %)"
        )


@dataclass
class BarRow:
    check: str
    ham: Rate | None
    spam: Rate | None


class HamSpamChart(QWidget):
    """Per check, the share of ham and of spam where it is true, with Wilson error bars."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[BarRow] = []
        self.title = ""
        self.note = ""
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAutoFillBackground(True)
        self.setStyleSheet("background: white;")

    def set_rows(self, rows: list[BarRow], title: str, note: str = "") -> None:
        self.rows, self.title, self.note = rows, title, note
        self.setFixedHeight(self._top() + ROW_HEIGHT * len(rows) + 16)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(800, self._top() + ROW_HEIGHT * len(self.rows) + 16)

    def _top(self) -> int:
        lines = 1 + (1 if self.note else 0)
        return 14 + 22 * lines + 24 + 22  # title, legend, axis labels

    def _label_width(self) -> int:
        fm = QFontMetrics(self.font())
        return max((fm.horizontalAdvance(r.check) for r in self.rows), default=60) + 16

    def _plot(self) -> QRectF:
        left = self._label_width() + 8
        top = self._top()
        return QRectF(left, top, max(self.width() - left - 28, 50), ROW_HEIGHT * len(self.rows))

    def _x(self, plot: QRectF, pct: float) -> float:
        return plot.left() + plot.width() * min(max(pct, 0.0), 100.0) / 100.0

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("white"))
        p.setPen(TEXT)
        bold = p.font()
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.1)
        p.setFont(bold)
        y = 14
        p.drawText(QRectF(0, y, self.width(), 22), Qt.AlignmentFlag.AlignHCenter, self.title)
        p.setFont(self.font())
        if self.note:
            y += 22
            p.drawText(QRectF(0, y, self.width(), 22), Qt.AlignmentFlag.AlignHCenter, self.note)
        if not self.rows:
            return
        y += 24
        self._legend(p, y)
        plot = self._plot()
        # axis: 0..100 % on top, a light grid line every 10 %
        for pct in range(0, 101, 10):
            x = self._x(plot, pct)
            p.setPen(QPen(GRID, 1))
            p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            p.setPen(TEXT)
            p.drawText(
                QRectF(x - 30, plot.top() - 20, 60, 18), Qt.AlignmentFlag.AlignCenter, f"{pct} %"
            )
        for i, row in enumerate(self.rows):
            band = plot.top() + i * ROW_HEIGHT
            p.setPen(TEXT)
            p.drawText(
                QRectF(0, band, plot.left() - 10, ROW_HEIGHT),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                row.check,
            )
            for j, (rate, color) in enumerate(((row.ham, HAM_COLOR), (row.spam, SPAM_COLOR))):
                top = band + 4 + j * (BAR_HEIGHT + 2)
                self._bar(p, plot, rate, color, top)
        p.setPen(QPen(TEXT, 1))
        p.drawLine(QPointF(plot.left(), plot.top()), QPointF(plot.left(), plot.bottom()))
        p.end()

    def _bar(self, p: QPainter, plot: QRectF, rate: Rate | None, color: QColor, top: float) -> None:
        if rate is None:
            p.setPen(QColor("#777777"))
            p.drawText(
                QRectF(plot.left() + 4, top - 2, 200, BAR_HEIGHT + 4),
                Qt.AlignmentFlag.AlignVCenter,
                "no message decided",
            )
            return
        x0 = plot.left()
        p.fillRect(QRectF(x0, top, self._x(plot, rate.pct) - x0, BAR_HEIGHT), color)
        # Wilson 95 % interval: a whisker with end caps, dark so it shows on the bar too
        mid = top + BAR_HEIGHT / 2
        lo, hi = self._x(plot, rate.low), self._x(plot, rate.high)
        p.setPen(QPen(color.darker(170), 1.6))
        p.drawLine(QPointF(lo, mid), QPointF(hi, mid))
        for x in (lo, hi):
            p.drawLine(QPointF(x, mid - 4), QPointF(x, mid + 4))

    def _legend(self, p: QPainter, y: float) -> None:
        fm = QFontMetrics(self.font())
        items = [("ham", HAM_COLOR), ("spam", SPAM_COLOR)]
        text_w = sum(fm.horizontalAdvance(t) + 40 for t, _ in items)
        whisker = "— 95 % interval (Wilson)"
        total = text_w + fm.horizontalAdvance(whisker) + 20
        x = (self.width() - total) / 2
        for text, color in items:
            p.fillRect(QRectF(x, y + 5, 14, 10), color)
            p.setPen(TEXT)
            p.drawText(QPointF(x + 20, y + 15), text)
            x += fm.horizontalAdvance(text) + 40
        p.setPen(QPen(TEXT, 1.6))
        p.drawLine(QPointF(x, y + 10), QPointF(x + 14, y + 10))
        p.drawLine(QPointF(x, y + 6), QPointF(x, y + 14))
        p.drawLine(QPointF(x + 14, y + 6), QPointF(x + 14, y + 14))
        p.drawText(QPointF(x + 20, y + 15), whisker[2:])

    def row_at(self, y: float) -> BarRow | None:
        plot = self._plot()
        i = math.floor((y - plot.top()) / ROW_HEIGHT)
        return self.rows[i] if 0 <= i < len(self.rows) and y >= plot.top() else None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        row = self.row_at(event.position().y())
        if row is None:
            QToolTip.hideText()
            return
        lines = [row.check]
        for name, rate in (("ham", row.ham), ("spam", row.spam)):
            lines.append(f"{name}: {rate.words() if rate else 'no message decided'}")
        QToolTip.showText(event.globalPosition().toPoint(), "\n".join(lines), self)


class HoursChart(QWidget):
    """Messages per sender-local hour of day, one line per role, as shares of the role."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        #: (name shown in the legend, colour, 24 percentages)
        self.series: list[tuple[str, QColor, list[float]]] = []
        self.title = ""
        self.setMinimumHeight(260)

    def set_series(self, series: list[tuple[str, QColor, list[float]]], title: str) -> None:
        self.series, self.title = series, title
        self.update()

    def y_max(self) -> tuple[float, float]:
        top = max((v for _n, _c, vals in self.series for v in vals), default=0.0)
        step = 1 if top <= 6 else 2 if top <= 14 else 5 if top <= 40 else 10
        return max(step, math.ceil(top / step) * step), step

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("white"))
        bold = p.font()
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.1)
        p.setFont(bold)
        p.setPen(TEXT)
        p.drawText(QRectF(0, 12, self.width(), 22), Qt.AlignmentFlag.AlignHCenter, self.title)
        p.setFont(self.font())
        if not self.series:
            return
        fm = QFontMetrics(self.font())
        # legend
        widths = [fm.horizontalAdvance(n) + 44 for n, _c, _v in self.series]
        x = (self.width() - sum(widths)) / 2
        for (name, color, _v), w in zip(self.series, widths, strict=True):
            p.setPen(QPen(color, 3))
            p.drawLine(QPointF(x, 48), QPointF(x + 18, 48))
            p.setPen(TEXT)
            p.drawText(QPointF(x + 24, 53), name)
            x += w
        plot = QRectF(56, 72, max(self.width() - 86, 50), max(self.height() - 72 - 40, 40))
        ymax, step = self.y_max()
        v = 0.0
        while v <= ymax + 1e-9:
            y = plot.bottom() - plot.height() * v / ymax
            p.setPen(QPen(GRID, 1))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(TEXT)
            p.drawText(
                QRectF(0, y - 9, plot.left() - 6, 18),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{v:g} %",
            )
            v += step
        for h in range(0, 25, 2):
            x = plot.left() + plot.width() * h / 24
            p.drawText(
                QRectF(x - 20, plot.bottom() + 4, 40, 18), Qt.AlignmentFlag.AlignCenter, f"{h} h"
            )
        p.drawText(
            QRectF(plot.left(), plot.bottom() + 20, plot.width(), 18),
            Qt.AlignmentFlag.AlignCenter,
            "hour of day in the sender's time zone (from the Date header)",
        )
        p.setPen(QPen(TEXT, 1))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        p.drawLine(plot.bottomLeft(), plot.topLeft())
        for _name, color, values in self.series:
            path = QPainterPath()
            for h, val in enumerate(values):
                # each hour's share is drawn at the middle of its hour
                pt = QPointF(
                    plot.left() + plot.width() * (h + 0.5) / 24,
                    plot.bottom() - plot.height() * val / ymax,
                )
                path.moveTo(pt) if h == 0 else path.lineTo(pt)
            p.setPen(QPen(color, 3))
            p.drawPath(path)
        p.end()
