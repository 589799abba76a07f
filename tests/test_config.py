"""The accounts file: what is accepted, and errors that name file, account and key."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from mailstats.accounts.config import (
    ConfigError,
    dump_config,
    load_config,
    parse_config,
    resolve_password,
)
from mailstats.cli import main

GOOD = """
[settings]
dns_servers = ["127.0.0.1:5353"]
dnsbl_zones = ["zen.spamhaus.org"]
modules = ["received"]

[[accounts]]
name = "work"
host = "imap.example.org"
security = "starttls"
username = "me@example.org"
password_env = "WORK_PW"
full_name = "Dana Whitfield"
trusted_relays = ["203.0.113.0/24", "mx.example.org"]
ham = ["INBOX"]
spam = ["Junk"]
sent = ["Sent"]

[[accounts]]
name = "archive"
path = "export.mbox"
ham = ["export"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "accounts.toml"
    p.write_text(text)
    return p


def test_good_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    work, archive = cfg.accounts
    assert work.port == 143  # starttls default
    assert work.domains == ["example.org"]
    assert work.roles() == {"Sent": "sent", "INBOX": "ham", "Junk": "spam"}
    assert list(work.roles())[0] == "Sent"  # sent first: friends/replies need it
    assert archive.path == str(tmp_path / "export.mbox")  # relative to the file
    assert cfg.settings.dns_servers == ["127.0.0.1:5353"]
    assert cfg.settings.modules == ["received"]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (('security = "starttls"', 'security = "tls"'), ["account 'work'", "'security'"]),
        (('username = "me@example.org"\n', ""), ["account 'work'", "'username'"]),
        (('ham = ["INBOX"]', 'ham = "INBOX"'), ["account 'work'", "'ham'", "list"]),
        (("full_name", "fullname"), ["account 'work'", "unknown key 'fullname'"]),
        (('spam = ["Junk"]', 'spam = ["INBOX"]'), ["'INBOX'", "both ham and spam"]),
        (("127.0.0.1:5353", "127.0.0.1:99999"), ["[settings]", "dns server"]),
    ],
)
def test_errors_name_file_account_key(tmp_path: Path, edit, words) -> None:
    p = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert str(p) in msg
    for w in words:
        assert w in msg, msg


def test_not_toml_and_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[[accounts]\nname="))
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_cli_exit_code_2_and_no_traceback(tmp_path: Path, capsys) -> None:
    p = write(tmp_path, GOOD.replace('security = "starttls"', 'security = "tls"'))
    assert main(["--batch", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "'security'" in err


def test_password_sources(monkeypatch) -> None:
    cfg = parse_config(tomllib.loads(GOOD))
    work = cfg.accounts[0]
    monkeypatch.setenv("WORK_PW", "s3cret-env")
    assert resolve_password(work) == "s3cret-env"
    monkeypatch.delenv("WORK_PW")
    work.password = "inline"
    assert resolve_password(work) == "inline"
    assert "inline" not in repr(work)


def test_dump_roundtrip_never_writes_password(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    cfg.accounts[0].password = "do-not-write-me"
    text = dump_config(cfg)
    assert "do-not-write-me" not in text
    again = parse_config(tomllib.loads(text))
    assert [a.name for a in again.accounts] == ["work", "archive"]
    assert again.accounts[0].trusted_relays == ["203.0.113.0/24", "mx.example.org"]
    assert again.accounts[0].security == "starttls"


def test_cache_file_is_private(tmp_path: Path) -> None:
    from mailstats.run.cache import Cache

    c = Cache(tmp_path / "c.sqlite")
    c.close()
    assert stat.S_IMODE(os.stat(tmp_path / "c.sqlite").st_mode) == 0o600


def test_app_mode_accepts_no_accounts_and_unmapped_ones(tmp_path: Path) -> None:
    p = write(tmp_path, '[settings]\ndns_servers = ["127.0.0.1:53"]\n')
    assert load_config(p, require_roles=False).accounts == []
    with pytest.raises(ConfigError, match="no \\[\\[accounts\\]\\]"):
        load_config(p)
    p.write_text('[[accounts]]\nname = "g"\nhost = "imap.example.org"\nusername = "u@x.org"\n')
    assert load_config(p, require_roles=False).accounts[0].roles() == {}
    # batch use fills the provider profile's folders (generic: INBOX, Junk, Sent)
    assert set(load_config(p).accounts[0].roles().values()) == {"ham", "spam", "sent"}


def test_dump_config_round_trips_table_settings() -> None:
    """Table-valued settings (dns_budgets) and any text (control characters too) come back
    from the file the app writes exactly as they went in."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from mailstats.accounts.config import Account, Config, dump_config, parse_config

    @settings(derandomize=True, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.dictionaries(st.text(min_size=1, max_size=12), st.integers(0, 10**9), max_size=5),
        st.text(max_size=20),
    )
    def check(budgets: dict[str, int], full_name: str) -> None:
        cfg = Config()
        cfg.settings.extra["dns_budgets"] = budgets
        cfg.accounts.append(Account(name="a", path="/m", full_name=full_name))
        again = parse_config(tomllib.loads(dump_config(cfg)), require_roles=False)
        assert again.settings.extra["dns_budgets"] == budgets
        assert again.accounts[0].full_name == full_name

    check()
