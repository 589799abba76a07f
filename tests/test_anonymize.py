"""Anonymised messages.csv must contain none of the original personal strings."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import pytest

from mailstats.stats.anonymize import Anonymizer, anonymize_messages_csv, load_or_create_key
from mailstats.stats.export import MESSAGE_COLUMNS

HEADER = [
    *MESSAGE_COLUMNS,
    "received.from_match",
    "dkim.signed",
    "datetime.hour",
    "datetime.skew_s",
    "received.origin_host",
    "dkim.domain",
    "age_days",
]

ROWS = [
    ["work", "INBOX", "ham", "1", "<a1b2.c3@mail.alice-corp.example>", "2024-03-01T10:00:00+00:00",
     "Alice.Smith@Alice-Corp.example", "198.51.100.23", "1", "1", "10", "-3.5",
     "mx1.alice-corp.example", "alice-corp.example", "40"],
    ["work", "Junk", "spam", "7", "<zz9@spammer.test>", "2024-03-02T03:00:00+00:00",
     "bob@spammer.test", "2001:db8::42", "0", "", "3", "7200",
     "dyn-203-0-113-9.isp.test", "", "39"],
    ["work", "INBOX", "ham", "2", "<only-local-id>", "2024-03-03T10:00:00+00:00",
     "carol@friends.example", "203.0.113.77", "", "0", "", "",
     "[203.0.113.77]", "Carol's free text", "38"],
]  # fmt: skip

SECRETS = [
    "a1b2.c3",
    "mail.alice-corp.example",
    "alice-corp",
    "Alice.Smith",
    "alice.smith",
    "198.51.100.23",
    "zz9",
    "spammer.test",
    "bob",
    "2001:db8::42",
    "dyn-203-0-113-9",
    "isp.test",
    "only-local-id",
    "carol",
    "friends.example",
    "203.0.113.77",
    "Carol's free text",
]


def _write(tmp_path: Path, with_manifest: bool = True) -> Path:
    path = tmp_path / "messages.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(ROWS)
    if with_manifest:
        (tmp_path / "manifest.json").write_text(
            json.dumps(
                {
                    "checks": ["received.from_match", "dkim.signed"],
                    "extras": [
                        "datetime.hour",
                        "datetime.skew_s",
                        "received.origin_host",
                        "dkim.domain",
                        "age_days",
                    ],
                }
            )
        )
    return path


@pytest.mark.parametrize("with_manifest", [True, False])
def test_no_original_string_survives(tmp_path: Path, with_manifest: bool) -> None:
    src = _write(tmp_path, with_manifest)
    key = b"k" * 32
    out = anonymize_messages_csv(src, tmp_path / "anon.csv", key)
    text = out.read_text()
    for secret in SECRETS:
        assert secret.lower() not in text.lower(), secret
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == HEADER
    first = rows[0]
    # Kept: account, folder, role, uid, date, checks and numeric extras.
    assert (first["account"], first["folder"], first["uid"]) == ("work", "INBOX", "1")
    assert first["date"] == "2024-03-01T10:00:00+00:00"
    assert first["received.from_match"] == "1" and rows[1]["dkim.signed"] == ""
    assert first["datetime.skew_s"] == "-3.5" and rows[1]["datetime.skew_s"] == "7200"
    assert first["age_days"] == "40"
    # Replaced, with the kind as prefix.
    assert first["message_id"].startswith("msgid_")
    assert first["origin_ip"].startswith("ip_")
    local, domain = first["from_address"].split("@")
    assert local.startswith("addr_") and domain.startswith("dom_")
    assert first["received.origin_host"].startswith("dom_")
    assert rows[2]["received.origin_host"].startswith("ip_")
    assert rows[2]["dkim.domain"].startswith("text_")
    # The IP in brackets in an extra and the same IP as origin_ip get the same token.
    assert rows[2]["received.origin_host"] == rows[2]["origin_ip"]
    # from_address domain token equals the dkim.domain token (case-insensitive join survives).
    assert domain == first["dkim.domain"]


def test_same_key_same_tokens_other_key_different(tmp_path: Path) -> None:
    src = _write(tmp_path)
    key_path = tmp_path / "cfg" / "anonymize.key"
    key1 = load_or_create_key(key_path)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    key2 = load_or_create_key(key_path)
    assert key1 == key2 and len(key1) == 32
    a = anonymize_messages_csv(src, tmp_path / "a.csv", key1).read_text()
    b = anonymize_messages_csv(src, tmp_path / "b.csv", key2).read_text()
    assert a == b
    other = anonymize_messages_csv(src, tmp_path / "c.csv", b"x" * 32).read_text()
    assert other != a


def test_token_shape_and_kind_binding() -> None:
    anon = Anonymizer(b"0" * 32)
    tok = anon.token("addr", "a@b.example")
    assert tok.startswith("addr_") and len(tok) == len("addr_") + 16
    int(tok[5:], 16)
    # Same value under another kind is a different token (no cross-kind linkage).
    assert anon.token("dom", "a@b.example")[4:] != tok[5:]
    assert anon.address("A@B.Example") == anon.address("<a@b.example>")
    with pytest.raises(ValueError):
        Anonymizer(b"short")


def test_default_key_path_uses_config_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    key = load_or_create_key()
    assert (tmp_path / "mailstats" / "anonymize.key").exists()
    assert load_or_create_key() == key
