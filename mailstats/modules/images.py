"""Images: an image/* MIME part, or an `<img>` tag in the first 2 KiB of the HTML body.

The structure answers for attached and embedded pictures at no cost; remote images (tracking
pixels, the typical image-spam layout) only show in the HTML, so the body slice is fetched,
but only for messages whose structure has a text/html part: plain-text mail costs nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mailstats.modules import BODY, HEADER, STRUCTURE, Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message
    from mailstats.services import Services

_IMG_RE = re.compile(r"<\s*img\b", re.I)


def has_html_part(msg: Message) -> bool:
    return any((p.content_type or "").lower() == "text/html" for p in msg.parts or ())


class ImagesModule(Module):
    name = "images"
    version = "1"
    description = "An image part, or an <img> in the HTML body"
    needs = frozenset({HEADER, STRUCTURE, BODY})
    checks = ("has_image",)
    extras = ("image_parts",)
    evidence = "message"

    def wants(self, msg: Message, item: str) -> bool:
        return item == BODY and has_html_part(msg)

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        parts = msg.parts
        images = [p for p in parts or () if (p.content_type or "").lower().startswith("image/")]
        body = msg.body_text
        if images:
            names = ", ".join(p.filename or p.content_type for p in images[:5])
            return {
                "has_image": True,
                "image_parts": len(images),
                "_why": {"has_image": f"{len(images)} image part(s): {names}"},
            }
        if body is not None and _IMG_RE.search(body):
            return {
                "has_image": True,
                "image_parts": None if parts is None else 0,
                "_why": {"has_image": "<img> tag in the HTML body"},
            }
        if parts is None:
            # Without the structure an image part cannot be ruled out.
            return {
                "has_image": None,
                "image_parts": None,
                "_why": {"has_image": "MIME structure not fetched"},
            }
        if has_html_part(msg) and body is None:
            return {
                "has_image": None,
                "image_parts": 0,
                "_why": {"has_image": "HTML body not fetched"},
            }
        return {"has_image": False, "image_parts": 0, "_why": {}}


MODULE = ImagesModule
