"""`mailstats share`: nothing identifying leaves in a bundle, and the participant sees it all
before anything is written."""

from __future__ import annotations

import io
import ipaddress
import json
import re
import zipfile
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

import pytest
from study_support import make_participant

from mailstats.cli import main
from mailstats.study.bundle import build_bundle, read_bundle, write_bundle

ACCOUNT = "zq-secret-account"
FOLDERS = ("Acme-Clients-Zq", "Junk-Zq-Private")
PLANTED_IP = "81.2.69.142"


def planted(i: int) -> bytes:
    host = f"mail{i}.zq-planted-sender.example"
    return (
        f"Received: from {host} ({host} [{PLANTED_IP}]) by mx.zq-recipient-isp.example "
        f"with ESMTPS id Q{i}; Mon, 1 Jan 2024 10:00:00 +0000\n"
        f"Received: from [198.18.7.{i}] by {host} with HTTP; Mon, 1 Jan 2024 09:59:58 +0000\n"
        f"From: Ingrid Planted <ingrid.planted{i}@zq-planted-sender.example>\n"
        f"Sender: bounce{i}@zq-bounces-planted.example\n"
        f"To: Dana Whitfield <dana@example.org>\n"
        f"Subject: Planted subject zebra-7731 number {i}\n"
        "Date: Mon, 1 Jan 2024 09:59:00 +0000\n"
        f"Message-ID: <planted-8812-{i}@zq-planted-sender.example>\n\nbody\n"
    ).encode()


def secrets_in(raws: list[bytes]) -> dict[str, set[str]]:
    """Every address, domain, IP, host, Message-ID and subject the mail carries."""
    out: dict[str, set[str]] = {k: set() for k in ("address", "domain", "ip", "msgid", "subject")}
    parser = BytesHeaderParser()
    for raw in raws:
        h = parser.parsebytes(raw)
        for field in ("From", "To", "Sender", "Reply-To", "Return-Path"):
            for _name, addr in getaddresses(h.get_all(field, [])):
                if "@" in addr:
                    out["address"].add(addr.lower())
                    out["domain"].add(addr.rsplit("@", 1)[1].lower())
        mid = (h.get("Message-ID") or "").strip().strip("<>")
        if mid:
            out["msgid"].add(mid)
        subject = (h.get("Subject") or "").strip()
        if len(subject) >= 8:
            out["subject"].add(subject)
        for line in h.get_all("Received", []):
            for ip in re.findall(r"\d{1,3}(?:\.\d{1,3}){3}", str(line)):
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    continue
                out["ip"].add(ip)
            for host in re.findall(r"(?:from|by) ([a-z0-9.-]+\.[a-z]{2,})", str(line), re.I):
                out["domain"].add(host.lower())
    out["ip"] -= {"127.0.0.1"}
    return out


def zip_text(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return "\n".join(zf.read(n).decode("utf-8") for n in zf.namelist()).lower()


@pytest.fixture(scope="module")
def participant(tmp_path_factory) -> tuple[Path, list[bytes]]:
    base = tmp_path_factory.mktemp("share")
    extra = {"ham": [planted(i) for i in range(4)], "spam": [planted(i) for i in range(4, 7)]}
    results, mb = make_participant(base, 77, 30, 20, account=ACCOUNT, folders=FOLDERS, extra=extra)
    raws = [m.raw for m in mb.messages()] + extra["ham"] + extra["spam"]
    return results, raws


def test_a_bundle_without_messages_leaks_nothing(participant, tmp_path: Path) -> None:
    results, raws = participant
    found = secrets_in(raws)
    assert (
        PLANTED_IP in found["ip"] and "planted-8812-0@zq-planted-sender.example" in found["msgid"]
    )
    assert len(found["address"]) > 10 and len(found["subject"]) > 10
    text = zip_text(write_bundle(build_bundle(results), tmp_path / "b.zip"))
    leaks = {kind: sorted(v for v in values if v.lower() in text) for kind, values in found.items()}
    assert leaks == {k: [] for k in found}
    for name in (ACCOUNT, *FOLDERS):
        assert name.lower() not in text
    # and it still carries what a study needs
    data = json.loads(zipfile.ZipFile(tmp_path / "b.zip").read("bundle.json"))
    ham = [c for c in data["counts"] if c["role"] == "ham" and c["check"] == "internal.internal"]
    assert ham and ham[0]["total"] == 34 and ham[0]["folder"] == "ham-1"
    assert data["hours"]["internal.internal"]["ham"]["applicable"].count(0) < 24


def test_anonymized_messages_leak_no_address_ip_or_names(
    participant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results, raws = participant
    found = secrets_in(raws)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    bundle = build_bundle(results, include_messages=True)
    text = zip_text(write_bundle(bundle, tmp_path / "m.zip"))
    for kind in ("address", "domain", "ip", "msgid", "subject"):
        assert [v for v in found[kind] if v.lower() in text] == [], kind
    for name in (ACCOUNT, *FOLDERS):
        assert name.lower() not in text
    assert (tmp_path / "config" / "mailstats" / "anonymize.key").exists()  # stays here
    back = read_bundle(tmp_path / "m.zip")
    assert back.messages_csv is not None
    assert back.messages_csv.count("\n") == 1 + 34 + 23  # header, ham, spam
    assert bundle.data["messages"] == {"file": "messages.csv", "rows": 57, "anonymized": True}


def test_names_only_when_asked(participant, tmp_path: Path) -> None:
    results, _raws = participant
    text = zip_text(write_bundle(build_bundle(results, include_names=True), tmp_path / "n.zip"))
    assert ACCOUNT.lower() in text and FOLDERS[0].lower() in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_share_previews_exactly_what_it_writes_and_asks(
    participant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    results, _raws = participant
    out = tmp_path / "bundle.zip"
    # not a terminal and no --yes: shown, refused, nothing written
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["share", str(results), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "bundle.json, exactly:" in captured.out and "--yes" in captured.err
    assert not out.exists()
    # a terminal: "n" writes nothing, "y" writes
    monkeypatch.setattr("sys.stdin", _Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["share", str(results), "--out", str(out)]) == 1
    assert not out.exists()
    capsys.readouterr()
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert main(["share", str(results), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["bundle.json"]
        written = zf.read("bundle.json").decode()
    assert written.rstrip() in printed  # the preview is the file, byte for byte
    assert "not included (replaced by ham-1, spam-1, ...)" in printed


def test_share_errors_are_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["share", str(tmp_path), "--out", str(tmp_path / "x.zip"), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "no summary.csv" in err and "Traceback" not in err


def test_one_account_of_several(tmp_path: Path) -> None:
    from test_report import make_results

    from mailstats.study.bundle import BundleError

    msgs = [
        {"account": a, "folder": "INBOX", "role": "ham", "uid": str(i), "c.x": "1",
         "datetime.hour": "5"}
        for a, n in (("first", 3), ("second", 5))
        for i in range(n)
    ]  # fmt: skip
    d = make_results(tmp_path / "r", msgs, ["c.x"], ["datetime.hour"])
    data = build_bundle(d, account="second").data
    assert data["accounts"] == 1
    assert [(c["folder"], c["total"]) for c in data["counts"]] == [("ham-1", 5)]
    assert data["hours"]["c.x"]["ham"]["matched"][5] == 5
    assert build_bundle(d).data["accounts"] == 2
    with pytest.raises(BundleError, match="no account named 'third'"):
        build_bundle(d, account="third")
