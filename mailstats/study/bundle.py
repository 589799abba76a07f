"""A participant's share of a study: aggregate numbers only, in one zip file.

What goes in `bundle.json` (format "mailstats-bundle", schema version 1, docs/formats.md):
per folder and check the matched / applicable / total counts, per check and role the
hour-of-day and message-age histograms (matched and applicable per bin), module names and
versions, the settings that change what a check means, a random bundle id and the schema
version. Folder and account names are replaced by `ham-1`, `spam-1`, ... and `mailbox`
unless the participant asks for them (`include_names`): they are the user's own words and
can identify an employer or a client. Host names, addresses, IPs, Message-IDs, subjects,
DNS servers, authserv-ids and warnings' texts never go in (the warnings are counted).

`include_messages` adds messages.csv pseudonymised by stats/anonymize.py under the
participant's own key (which stays on their machine), with the account and folder columns
replaced like the folder names above.

Why one JSON file rather than CSVs: a bundle is exchanged between people and versions, so it
must be validated as a whole (schema, counts that add up) before anything is pooled.
"""

from __future__ import annotations

import csv
import io
import json
import math
import secrets
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "mailstats-bundle"
SCHEMA_VERSION = 1
BUNDLE_JSON = "bundle.json"
MESSAGES_CSV = "messages.csv"
ROLES = ("ham", "spam", "sent")
#: Age bins in days, fixed (not quantiles) so that histograms of different bundles add up.
AGE_EDGES_DAYS = (0, 7, 30, 91, 182, 365, 730, 1826)
#: Settings that change what a check means, copied as they are (they name public services
#: or numbers, never the participant's own hosts).
MEANING_SETTINGS = ("dnsbl_zones", "now_max_age_days", "reachability_port", "modules")
#: Settings that change meaning but name the participant's own hosts: only whether and how
#: many were set goes in.
COUNTED_SETTINGS = ("authserv_ids", "dns_servers")


class BundleError(ValueError):
    """A bundle that cannot be written or read; the message says which and why."""


@dataclass
class Bundle:
    """A bundle in memory: its bundle.json data and, optionally, messages.csv text."""

    data: dict[str, Any]
    messages_csv: str | None = None
    source: str = ""  # the file it was read from, for messages
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bundle_id(self) -> str:
        return str(self.data["bundle_id"])


# --------------------------------------------------------------------------- building


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        return header, list(reader)


def _int(text: Any) -> int:
    try:
        return int(str(text).strip())
    except ValueError as exc:
        raise BundleError(f"not a whole number: {text!r}") from exc


def _age_bin(days: float) -> int:
    for i in range(len(AGE_EDGES_DAYS) - 1, -1, -1):
        if days >= AGE_EDGES_DAYS[i]:
            return i
    return 0  # a date in the future: the youngest bin


def _histograms(
    results: Path, checks: list[str], keep: Mapping[tuple[str, str], str]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Per check and role, matched and applicable messages per hour of day and age bin.

    None for a histogram whose column is not in messages.csv (the datetime module did not
    run, or an old results folder), so "not measured" is never shown as "no messages".
    """
    path = results / "messages.csv"
    if not path.exists():
        return None, None
    header, rows = _read_rows(path)
    idx = {name: i for i, name in enumerate(header)}
    hour_i, age_i = idx.get("datetime.hour"), idx.get("age_days")
    cols = [(c, idx[c]) for c in checks if c in idx]

    def empty(n: int) -> dict[str, Any]:
        return {c: {r: {"matched": [0] * n, "applicable": [0] * n} for r in ROLES} for c, _ in cols}

    hours = empty(24) if hour_i is not None else None
    ages = empty(len(AGE_EDGES_DAYS)) if age_i is not None else None
    a_i, f_i, r_i = idx.get("account"), idx.get("folder"), idx.get("role")
    for row in rows:
        if a_i is None or f_i is None or r_i is None or max(a_i, f_i, r_i) >= len(row):
            continue
        if (row[a_i], row[f_i]) not in keep:
            continue
        role = row[r_i].strip().lower()
        if role not in ROLES:
            continue
        hbin = abin = None
        if hours is not None and hour_i is not None and hour_i < len(row):
            try:
                h = int(float(row[hour_i]))
                hbin = h if 0 <= h < 24 else None
            except ValueError:
                pass
        if ages is not None and age_i is not None and age_i < len(row):
            try:
                d = float(row[age_i])
                abin = _age_bin(d) if math.isfinite(d) else None
            except ValueError:
                pass
        for check, ci in cols:
            cell = row[ci].strip() if ci < len(row) else ""
            if cell not in ("0", "1"):
                continue
            for hist, b in ((hours, hbin), (ages, abin)):
                if hist is not None and b is not None:
                    hist[check][role]["applicable"][b] += 1
                    if cell == "1":
                        hist[check][role]["matched"][b] += 1
    return hours, ages


def _settings(manifest: Mapping[str, Any]) -> dict[str, Any]:
    raw = manifest.get("settings") or {}
    out: dict[str, Any] = {}
    if isinstance(raw, Mapping):
        for key in MEANING_SETTINGS:
            if raw.get(key) not in (None, "", []):
                out[key] = raw[key]
        for key in COUNTED_SETTINGS:
            value = raw.get(key)
            out[f"{key}_count"] = len(value) if isinstance(value, list) else (1 if value else 0)
    return out


def build_bundle(
    results_dir: str | Path,
    *,
    account: str | None = None,
    label: str = "",
    include_names: bool = False,
    include_messages: bool = False,
    key_path: str | Path | None = None,
) -> Bundle:
    """The bundle for a `mailstats --batch` results folder (every account pooled, or one)."""
    results = Path(results_dir)
    if not (results / "summary.csv").exists():
        raise BundleError(f"{results}: no summary.csv here; run mailstats --batch first")
    manifest = _read_json(results / "manifest.json")
    header, rows = _read_rows(results / "summary.csv")
    need = ["account", "folder", "role", "check", "matched", "applicable", "total"]
    if any(c not in header for c in need):
        raise BundleError(f"{results}/summary.csv: not a mailstats summary (columns {header})")
    idx = {c: header.index(c) for c in need}
    accounts = list(dict.fromkeys(r[idx["account"]] for r in rows if len(r) == len(header)))
    if account is not None and account not in accounts:
        raise BundleError(f"{results}: no account named {account!r} in summary.csv")
    names: dict[tuple[str, str], str] = {}  # (account, folder) -> name in the bundle
    per_role: dict[str, int] = {}
    counts: list[dict[str, Any]] = []
    checks: list[str] = []
    for r in rows:
        if len(r) != len(header):
            continue
        acct, folder, role = r[idx["account"]], r[idx["folder"]], r[idx["role"]]
        if account is not None and acct != account:
            continue
        if (acct, folder) not in names:
            per_role[role] = per_role.get(role, 0) + 1
            names[(acct, folder)] = (
                f"{acct}/{folder}" if include_names else f"{role}-{per_role[role]}"
            )
        check = r[idx["check"]]
        if check not in checks:
            checks.append(check)
        m, a, t = (_int(r[idx[k]]) for k in ("matched", "applicable", "total"))
        if not 0 <= m <= a <= t:
            raise BundleError(f"{results}/summary.csv: {check} counts {m}/{a}/{t} do not add up")
        counts.append(
            {
                "folder": names[(acct, folder)],
                "role": role,
                "check": check,
                "matched": m,
                "applicable": a,
                "total": t,
            }  # fmt: skip
        )
    hours, ages = _histograms(results, checks, names)
    man_accounts = [
        a for a in manifest.get("accounts") or [] if account is None or a.get("name") == account
    ]
    labels = sorted({str(a.get("labels")) for a in man_accounts if a.get("labels")})
    all_folders = [f for a in man_accounts for f in a.get("folders") or []]
    modules = manifest.get("modules") or {}
    data: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "bundle_id": secrets.token_hex(16),
        "created": datetime.now(UTC).strftime("%Y-%m-%d"),
        "label": label,
        "mailstats_version": str(manifest.get("mailstats_version") or "unknown"),
        "modules": {str(k): str(v) for k, v in modules.items()}
        if isinstance(modules, Mapping)
        else {},
        "checks": checks,
        "network_checks": [c for c in manifest.get("network_checks") or [] if c in checks],
        "settings": _settings(manifest),
        "labels": labels,
        "accounts": len({a for a, _f in names}),
        "account_names": sorted({a for a, _f in names}) if include_names else [],
        "folders": [
            {"folder": n, "role": next(c["role"] for c in counts if c["folder"] == n)}
            for n in dict.fromkeys(names.values())
        ],
        "counts": counts,
        "age_edges_days": list(AGE_EDGES_DAYS),
        "hours": hours,
        "ages": ages,
        "quality": {
            "malformed": sum(int(f.get("malformed") or 0) for f in all_folders),
            "module_errors": sum(
                sum(v for v in (f.get("errors") or {}).values() if isinstance(v, int))
                for f in all_folders
            ),
            "warnings": len(manifest.get("warnings") or []),
            "failed_accounts": sum(1 for a in man_accounts if a.get("status") != "ok"),
        },
        "messages": None,
    }
    text = None
    if include_messages:
        text, n = _anonymized_messages(results, names, key_path)
        data["messages"] = {"file": MESSAGES_CSV, "rows": n, "anonymized": True}
    return Bundle(data, text)


def _anonymized_messages(
    results: Path, names: Mapping[tuple[str, str], str], key_path: str | Path | None
) -> tuple[str, int]:
    """messages.csv through anonymize.py (the participant's key), account and folder renamed."""
    from mailstats.stats.anonymize import anonymize_messages_csv, load_or_create_key

    src = results / "messages.csv"
    if not src.exists():
        raise BundleError(f"{results}: no messages.csv to include")
    key = load_or_create_key(key_path)
    with tempfile.TemporaryDirectory(prefix="mailstats-share-") as tmp:
        out = Path(tmp) / "messages.csv"
        anonymize_messages_csv(src, out, key, results / "manifest.json")
        header, rows = _read_rows(out)
    a_i, f_i = header.index("account"), header.index("folder")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        if len(row) <= max(a_i, f_i):
            continue
        name = names.get((row[a_i], row[f_i]))
        if name is None:  # another account's message (share --account)
            continue
        row[a_i], row[f_i] = "mailbox", name
        writer.writerow(row)
        n += 1
    return buf.getvalue(), n


# --------------------------------------------------------------------------- preview, write


def _compact(value: Any, indent: int = 0) -> str:
    """JSON with short lists and flat objects on one line: the exact content, readable."""
    pad = "  " * indent
    if isinstance(value, dict) and value:

        def scalar(v: Any) -> bool:
            return not isinstance(v, dict | list)

        if all(scalar(v) or (isinstance(v, list) and all(map(scalar, v))) for v in value.values()):
            one = json.dumps(value, ensure_ascii=False)
            if len(one) <= 200 or all(scalar(v) for v in value.values()):
                return one
        items = [
            f"{pad}  {json.dumps(k, ensure_ascii=False)}: {_compact(v, indent + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        items = [f"{pad}  {_compact(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


def bundle_json_text(bundle: Bundle) -> str:
    """bundle.json exactly as written (and as previewed)."""
    return _compact(bundle.data) + "\n"


def preview(bundle: Bundle) -> str:
    """What the participant is shown before anything is written: a summary in words, then
    the exact bundle.json, then messages.csv's columns and first rows when included."""
    d = bundle.data
    folders = ", ".join(f"{f['folder']} ({f['role']})" for f in d["folders"]) or "none"
    lines = [
        "This bundle holds aggregate numbers only:",
        f"  bundle id {d['bundle_id']} (random), schema {d['format']} v{d['schema_version']}",
        f"  mailstats {d['mailstats_version']}; modules "
        + ", ".join(f"{k} {v}" for k, v in d["modules"].items()),
        f"  {d['accounts']} account(s) as one mailbox; folders: {folders}",
        f"  {len(d['counts'])} count rows (folder x check: matched / applicable / total)",
        "  hour-of-day histograms: "
        + ("per check and role" if d["hours"] is not None else "not measured"),
        "  age histograms: " + ("per check and role" if d["ages"] is not None else "not measured"),
        "  settings that change meaning: " + json.dumps(d["settings"], ensure_ascii=False),
    ]
    if d["account_names"]:
        lines.append("  account and folder names: INCLUDED (asked for)")
    else:
        lines.append("  account and folder names: not included (replaced by ham-1, spam-1, ...)")
    lines.append(
        "  never included: addresses, domains, host names, IPs, Message-IDs, subjects, "
        "DNS servers, passwords"
    )
    if bundle.messages_csv is not None:
        rows = bundle.messages_csv.splitlines()
        lines.append(
            f"  messages.csv: {len(rows) - 1} rows, pseudonymised with your own key (kept "
            "on this machine): addresses, domains, IPs and Message-IDs are keyed tokens"
        )
    else:
        lines.append("  messages.csv: not included (--include-messages adds it, anonymized)")
    lines += ["", f"{BUNDLE_JSON}, exactly:", bundle_json_text(bundle).rstrip()]
    if bundle.messages_csv is not None:
        rows = bundle.messages_csv.splitlines()
        lines += ["", f"{MESSAGES_CSV}, first rows of {len(rows) - 1}:", *rows[:4]]
    return "\n".join(lines) + "\n"


def write_bundle(bundle: Bundle, out: str | Path) -> Path:
    """The zip, written atomically (a temporary name, then renamed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(BUNDLE_JSON, bundle_json_text(bundle))
        if bundle.messages_csv is not None:
            zf.writestr(MESSAGES_CSV, bundle.messages_csv)
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------- reading


def _require(cond: bool, source: str, what: str) -> None:
    if not cond:
        raise BundleError(f"{source}: not a valid mailstats bundle: {what}")


def _check_hist(hist: Any, source: str, name: str, bins: int) -> None:
    if hist is None:
        return
    _require(isinstance(hist, dict), source, f"{name} is not an object")
    for check, per_role in hist.items():
        _require(isinstance(per_role, dict), source, f"{name}.{check} is not an object")
        for role, h in per_role.items():
            ok = isinstance(h, dict) and all(
                isinstance(h.get(k), list)
                and len(h[k]) == bins
                and all(isinstance(x, int) and x >= 0 for x in h[k])
                for k in ("matched", "applicable")
            )
            _require(ok, source, f"{name}.{check}.{role} is not {bins} whole-number bins")
            _require(
                all(m <= a for m, a in zip(h["matched"], h["applicable"], strict=True)),
                source,
                f"{name}.{check}.{role}: matched above applicable",
            )


def validate(data: Any, source: str) -> dict[str, Any]:
    """Schema checks: the format, a version this mailstats reads, and counts that add up."""
    _require(isinstance(data, dict), source, "bundle.json is not an object")
    _require(data.get("format") == FORMAT, source, f"format is {data.get('format')!r}")
    version = data.get("schema_version")
    _require(isinstance(version, int) and version >= 1, source, "no schema_version")
    if version > SCHEMA_VERSION:
        raise BundleError(
            f"{source}: made with schema version {version}; this mailstats reads up to "
            f"{SCHEMA_VERSION}: upgrade mailstats to pool it"
        )
    bid = data.get("bundle_id")
    _require(isinstance(bid, str) and len(bid) >= 8, source, "no bundle_id")
    for key, kind in (("modules", dict), ("checks", list), ("counts", list), ("folders", list)):
        _require(isinstance(data.get(key), kind), source, f"{key} missing or not a {kind.__name__}")
    for i, row in enumerate(data["counts"]):
        ok = isinstance(row, dict) and all(
            isinstance(row.get(k), int) for k in ("matched", "applicable", "total")
        )
        _require(ok and isinstance(row.get("check"), str), source, f"counts[{i}] malformed")
        _require(row.get("role") in ROLES, source, f"counts[{i}]: role {row.get('role')!r}")
        _require(
            0 <= row["matched"] <= row["applicable"] <= row["total"],
            source,
            f"counts[{i}] ({row['check']}): matched <= applicable <= total does not hold",
        )
    _check_hist(data.get("hours"), source, "hours", 24)
    edges = data.get("age_edges_days")
    if data.get("ages") is not None:
        _require(isinstance(edges, list) and edges, source, "ages without age_edges_days")
        _check_hist(data.get("ages"), source, "ages", len(edges))
    return data


def read_bundle(path: str | Path) -> Bundle:
    """A bundle from its zip, validated; BundleError names the file and the problem."""
    path = Path(path)
    source = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            _require(BUNDLE_JSON in names, source, f"no {BUNDLE_JSON} in the zip")
            data = json.loads(zf.read(BUNDLE_JSON).decode("utf-8"))
            messages = zf.read(MESSAGES_CSV).decode("utf-8") if MESSAGES_CSV in names else None
    except FileNotFoundError as exc:
        raise BundleError(f"{source}: no such file") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{source}: not a zip file ({exc})") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{source}: bundle.json is not valid JSON ({exc})") from exc
    validate(data, source)
    return Bundle(data, messages, source)


def duplicate_ids(bundles: Iterable[Bundle]) -> list[tuple[str, str, str]]:
    """(bundle id, first file, repeated file) for every bundle id seen twice."""
    seen: dict[str, str] = {}
    out = []
    for b in bundles:
        if b.bundle_id in seen:
            out.append((b.bundle_id, seen[b.bundle_id], b.source))
        else:
            seen[b.bundle_id] = b.source
    return out
