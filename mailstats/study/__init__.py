"""Study mode: participants share aggregate bundles, a researcher pools many mailboxes.

- `bundle.py`: `mailstats share RESULTS_DIR --out BUNDLE.zip` (what goes in, the preview,
  reading and validating bundles);
- `pool.py`: per-mailbox ham - spam differences pooled by DerSimonian-Laird random effects,
  `mailstats study BUNDLE... --out DIR` writing mailboxes.csv and study.csv;
- `html.py`: study.html (forest plots, the per-mailbox scatter plots and table, and the
  leave-one-mailbox-out evaluation of the combined model when bundles carry messages).
"""
