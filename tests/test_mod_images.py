"""images: image parts from the structure, <img> from the HTML slice fetched only when needed."""

from __future__ import annotations

import pytest
from mod_local_support import msg, run_over_corpus, services

from mailstats.mail.message import MimePart
from mailstats.modules.images import ImagesModule

MOD = ImagesModule()
HDR = "From: Deals <news@shop.example>\nTo: dana@example.org\nSubject: 70% off\n\n"
PLAIN = MimePart("text/plain", "", "", 812, "utf-8")
HTML = MimePart("text/html", "", "", 4096, "utf-8")
NEWSLETTER = (
    '<html><body><table width="600"><tr><td>'
    '<IMG SRC="https://cdn.shop.example/banner.jpg" alt="Sale"></td></tr></table>'
)


def test_image_part() -> None:
    m = msg(HDR, parts=[PLAIN, MimePart("image/jpeg", "attachment", "photo.jpg", 90000)])
    r = MOD.evaluate(m, services())
    assert r["has_image"] is True and r["image_parts"] == 1


def test_img_tag_in_html_body() -> None:
    m = msg(HDR, parts=[PLAIN, HTML], body=NEWSLETTER)
    r = MOD.evaluate(m, services())
    assert r["has_image"] is True and r["image_parts"] == 0


def test_html_without_img() -> None:
    m = msg(HDR, parts=[HTML], body="<html><body><p>Hello <b>Dana</b>, imgur link: x</p>")
    assert MOD.evaluate(m, services())["has_image"] is False


def test_plain_mail_is_false_without_body() -> None:
    m = msg(HDR, parts=[PLAIN])
    assert MOD.evaluate(m, services())["has_image"] is False
    assert MOD.wants(m, "body") is False


def test_wants_body_only_for_html() -> None:
    assert MOD.wants(msg(HDR, parts=[PLAIN, HTML]), "body") is True
    assert MOD.wants(msg(HDR, parts=[PLAIN, HTML]), "raw") is False
    assert MOD.wants(msg(HDR, parts=None), "body") is False
    assert MOD.wants(msg(HDR, parts=[MimePart("TEXT/HTML")]), "body") is True


def test_html_body_not_fetched_is_unknown() -> None:
    r = MOD.evaluate(msg(HDR, parts=[PLAIN, HTML]), services())
    assert r["has_image"] is None


def test_no_structure() -> None:
    assert MOD.evaluate(msg(HDR), services())["has_image"] is None
    # the body alone can still prove an image
    assert MOD.evaluate(msg(HDR, body=NEWSLETTER), services())["has_image"] is True
    assert MOD.evaluate(msg(HDR, body="<p>no pictures</p>"), services())["has_image"] is None


@pytest.mark.parametrize("body", ["", "<im g>", "<<<>>>\x00\ufffd", "< img", "<imgx>"])
def test_odd_bodies(body: str) -> None:
    r = MOD.evaluate(msg(HDR, parts=[HTML], body=body), services())
    assert r["has_image"] is (body == "< img")


@pytest.mark.corpus
def test_corpus() -> None:
    counts = run_over_corpus(MOD, services(), prefer_html=True)
    n = counts["_n"]
    # Image spam and HTML newsletters: images are far more common in the spam part of the
    # corpus; every message has its structure and a body slice here, so almost none unknown.
    assert counts["has_image"][None] <= 5
    assert 60 <= counts["has_image"][True] <= n // 2
