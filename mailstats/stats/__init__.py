"""From per-message results to numbers people read.

Indicators, the combined model, CSV export, anonymisation and the HTML report.
"""
