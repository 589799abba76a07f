"""`mailstats folders FILE ACCOUNT` lists folders before any is mapped: that is what it is for.

The mapping is decided from this listing, so an account with no ham/spam/sent yet (which
`--batch` refuses) must list, with each folder's message count and the guessed role.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.generator import Mailbox
from mailstats import cli


def folder_lines(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("mapped", ["", 'spam = ["INBOX"]\n'])
def test_folders_lists_with_or_without_a_mapping(
    tmp_path: Path, generated_mailbox: Mailbox, capsys: pytest.CaptureFixture[str], mapped: str
) -> None:
    maildir = generated_mailbox.write_maildir(tmp_path / "Maildir")
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[[accounts]]\nname = "dana"\npath = "{maildir}"\n{mapped}')
    assert cli.main(["folders", str(accounts), "dana"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert err == ""
    rows = folder_lines(out)
    assert set(rows) == {"INBOX", "Junk", "Sent"}
    counts = {name: int(cols[0]) for name, cols in rows.items()}
    assert counts == {"INBOX": 120, "Junk": 80, "Sent": 30}
    roles = {name: cols[1] for name, cols in rows.items()}
    # a mapping the user made wins over the guess; unmapped folders show the guess
    want_inbox = "spam" if mapped else "ham"
    assert roles == {"INBOX": want_inbox, "Junk": "spam", "Sent": "sent"}
    # and --batch still refuses the unmapped file, naming what to do
    if not mapped:
        assert cli.main(["--batch", str(accounts), "--out", str(tmp_path / "o"), "-q"]) == 2
        assert "map at least one folder" in capsys.readouterr().err


def test_folders_unknown_account_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[[accounts]]\nname = "dana"\npath = "/nonexistent"\n')
    assert cli.main(["folders", str(accounts), "nobody"]) == cli.EXIT_USAGE
    assert "no account named 'nobody'" in capsys.readouterr().err
