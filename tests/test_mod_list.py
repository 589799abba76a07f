"""list: mailing-list and bulk headers. Also a fuzz test over every local module."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mod_local_support import msg, run_over_corpus, services

from mailstats.mail.message import MimePart
from mailstats.modules.list import ListModule
from mailstats.services import SentIndex

MOD = ListModule()
BASE = "From: Alice <alice@uni.example>\nTo: dana@example.org\nSubject: hi\n"


def run(extra: str) -> dict:
    return MOD.evaluate(msg(BASE + extra + "\n"), services())


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: USRP users discussion list <usrp-users.lists.ettus.com>\n",
        "List-Unsubscribe: <mailto:leave-news@shop.example>,\n <https://shop.example/u/9f2>\n",
        "List-Post: <mailto:openipmi-developer@lists.sourceforge.net>\n",
        "List-Help: <mailto:sympa@lists.example?subject=help>\n",
        "Mailing-List: contact ilug-help@linux.ie; run by ezmlm\n",
        "Precedence: bulk\n",
        "Precedence: list\n",
        "PRECEDENCE:   Bulk  \n",
        "list-id: <x.example>\n",
    ],
)
def test_list_headers(header: str) -> None:
    r = run(header)
    assert r["is_list"] is True
    assert r["_why"]["is_list"]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Precedence: junk\n",  # vacation responders and cron: not a list
        "Precedence: first-class\n",
        "List-Id:\n",  # empty value says nothing
        "X-List: not a standard header\n",
        "Subject2: List-Id: in a value\n",
    ],
)
def test_not_list(header: str) -> None:
    assert run(header)["is_list"] is False


def test_malformed_header_block() -> None:
    for raw in (b"", b"\xff\xfe\n\n", b"List-Id\n\n", b": List-Id: x\n\n"):
        assert MOD.evaluate(msg(raw), services())["is_list"] in (True, False)


@pytest.mark.corpus
def test_corpus() -> None:
    counts = run_over_corpus(MOD, services())
    n = counts["_n"]
    # Most of the labelled ham comes from list archives, and the dead osst-users list still
    # relays spam: a large share is list mail, yet far from all.
    assert counts["is_list"][None] == 0
    assert n // 4 < counts["is_list"][True] < n * 3 // 4


# --- every local module must survive arbitrary input ------------------------------------

LOCAL = ("auth", "attachments", "images", "datetime", "reply", "friends", "internal")
LOCAL += ("personal", "list")
HEADER_NAMES = [
    "From", "To", "Date", "Received", "Authentication-Results", "Received-SPF",
    "ARC-Authentication-Results", "In-Reply-To", "References", "List-Id", "Precedence",
]  # fmt: skip

header_line = st.tuples(
    st.sampled_from(HEADER_NAMES) | st.text(min_size=1, max_size=12),
    st.text(max_size=120),
).map(lambda kv: f"{kv[0]}: {kv[1]}")
parts_st = st.none() | st.lists(
    st.builds(
        MimePart,
        content_type=st.sampled_from(["text/html", "image/gif", "application/zip", ""])
        | st.text(max_size=20),
        disposition=st.sampled_from(["", "inline", "attachment"]) | st.text(max_size=8),
        filename=st.text(max_size=20),
        size=st.integers(-10, 10**9),
        charset=st.text(max_size=8),
    ),
    max_size=6,
)


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    lines=st.lists(header_line, max_size=8),
    parts=parts_st,
    body=st.none() | st.text(max_size=300),
)
def test_local_modules_never_raise(lines: list[str], parts, body) -> None:
    svc = services(
        full_name="Dana Whitfield",
        own_domains=("example.org",),
        sent_index=SentIndex(recipients={"a@b.example"}, message_ids={"x@y"}),
        settings={"authserv_ids": ["mx.example.org"]},
    )
    raw = ("\n".join(lines) + "\n\n").encode("utf-8", "surrogatepass")
    m = msg(raw, parts=parts, body=body)
    for name in LOCAL:
        module = importlib.import_module(f"mailstats.modules.{name}").MODULE()
        result = module.evaluate(m, svc)
        for check in module.checks:
            assert result[check] in (True, False, None), (name, check)
        for extra in module.extras:
            assert extra in result
        assert isinstance(result.get("_why", {}), dict)
