"""Shared pieces of the self-contained HTML pages (report.html, study.html).

Plots are PNGs rendered by matplotlib's Agg backend and embedded as base64 data URIs, so a
page can be mailed or archived as is. Cells passed to `table` must already be escaped; `fmt`
escapes what it formats.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable
from html import escape
from typing import Any

ROLE_COLOURS = {"ham": "#2b83ba", "spam": "#d7191c", "sent": "#7b7b7b"}
MAX_SCATTER_PANELS = 24

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1180px;padding:1.2em 2em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;
padding-bottom:.2em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d5d5d5;padding:.25em .55em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .9em;margin:.8em 0}
.nodata{color:#777;font-style:italic}.small{font-size:.85em;color:#555}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
"""


def plt_module() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def img(fig: Any, alt: str, dpi: int = 96) -> str:
    plt = plt_module()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def png_img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def no_data(text: str) -> str:
    return f'<p class="nodata">{escape(text)}</p>'


def fmt(value: Any, digits: int = 3, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if pct else f"{value:.{digits}f}"
    return escape(str(value))


def html_table(headers: list[str], rows: Iterable[list[str]], left: int = 1) -> str:
    """An HTML table; cells must already be escaped (fmt does that)."""
    head = "".join(
        f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
