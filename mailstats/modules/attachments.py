"""Attachments, read from the MIME structure alone (BODYSTRUCTURE), never from the body.

What counts as an attachment:
- any part with `Content-Disposition: attachment` (or an unknown disposition token, which
  RFC 2183 says to treat as attachment);
- a part with a file name and no disposition at all when it is application/*, audio/*,
  video/*, model/* or message/* (old mailers and many spam tools omit the disposition, and
  every mail client still shows such a part as an attachment). Named text/* and image/* parts
  without a disposition do not count: those are the HTML newsletter's embedded pictures and
  stylesheets in multipart/related, which no reader sees as attachments;
- never a signature or encryption control part (S/MIME .p7s, PGP), which would otherwise make
  every signed ham message "have an attachment".
`risky` is True when an attachment is something that runs or hides what runs: executables,
scripts, macro-enabled Office files, archives and disk images, HTML/SVG (phishing forms), by
file extension or by content type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailstats.modules import HEADER, STRUCTURE, Module, Value

if TYPE_CHECKING:
    from mailstats.mail.message import Message, MimePart
    from mailstats.services import Services

NAMED_COUNTS = ("application/", "audio/", "video/", "model/", "message/")
NOT_ATTACHMENTS = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "application/pgp-encrypted",
        "application/pgp-keys",
    }
)

_RISKY_EXTENSION_GROUPS = (
    # executables and installers
    "exe scr com pif cpl msi msp msc dll sys lnk appx appxbundle msix",
    # scripts
    "js jse vbs vbe wsf wsh wsc ps1 psm1 psd1 bat cmd sh hta jar reg inf url scf chm",
    # macro-enabled Office and OneNote
    "docm dotm xlsm xltm xlam xlsb pptm potm ppam ppsm sldm one",
    # archives and disk images
    "zip rar 7z gz tgz bz2 xz tar cab ace arj lzh lha z uue iso img vhd vhdx",
    # active documents
    "html htm shtml xhtml svg",
)
RISKY_EXTENSIONS = frozenset(w for group in _RISKY_EXTENSION_GROUPS for w in group.split())
RISKY_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-dosexec",
        "application/x-executable",
        "application/x-ms-installer",
        "application/x-msi",
        "application/vnd.microsoft.portable-executable",
        "application/java-archive",
        "application/x-java-archive",
        "application/javascript",
        "application/x-javascript",
        "text/javascript",
        "text/vbscript",
        "application/x-sh",
        "application/x-bat",
        "application/hta",
        "application/zip",
        "application/x-zip-compressed",
        "application/x-zip",
        "application/vnd.rar",
        "application/x-rar-compressed",
        "application/x-rar",
        "application/x-7z-compressed",
        "application/gzip",
        "application/x-gzip",
        "application/x-tar",
        "application/x-bzip2",
        "application/x-xz",
        "application/vnd.ms-cab-compressed",
        "application/x-iso9660-image",
        "application/x-cd-image",
        "application/x-raw-disk-image",
        "application/vnd.ms-word.document.macroenabled.12",
        "application/vnd.ms-word.template.macroenabled.12",
        "application/vnd.ms-excel.sheet.macroenabled.12",
        "application/vnd.ms-excel.template.macroenabled.12",
        "application/vnd.ms-excel.addin.macroenabled.12",
        "application/vnd.ms-excel.sheet.binary.macroenabled.12",
        "application/vnd.ms-powerpoint.presentation.macroenabled.12",
        "application/vnd.ms-powerpoint.slideshow.macroenabled.12",
        "application/vnd.ms-powerpoint.addin.macroenabled.12",
        "application/onenote",
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
    }
)


def is_attachment(part: MimePart) -> bool:
    ctype = (part.content_type or "").lower()
    if ctype in NOT_ATTACHMENTS:
        return False
    disposition = (part.disposition or "").lower()
    if disposition == "inline":
        return False
    if disposition:
        return True  # "attachment", or an unknown token, which RFC 2183 says to treat so
    return bool(part.filename) and ctype.startswith(NAMED_COUNTS)


def extension(filename: str) -> str:
    """Last extension, lower case; trailing dots and spaces removed ("a.exe. " -> "exe")."""
    name = (filename or "").strip().rstrip(". ").lower()
    if "." not in name:
        return ""
    return name.rsplit(".", 1)[1].strip()


def is_risky(part: MimePart) -> bool:
    return (
        extension(part.filename) in RISKY_EXTENSIONS
        or (part.content_type or "").lower() in RISKY_TYPES
    )


class AttachmentsModule(Module):
    name = "attachments"
    version = "1"
    description = "Attachments and risky attachment types, from the MIME structure only"
    needs = frozenset({HEADER, STRUCTURE})
    checks = ("has_attachment", "risky")
    extras = ("count", "total_size")
    evidence = "message"

    def evaluate(self, msg: Message, services: Services) -> dict[str, Value | dict]:
        if msg.parts is None:
            return {
                "has_attachment": None,
                "risky": None,
                "count": None,
                "total_size": None,
                "_why": {"has_attachment": "MIME structure not fetched"},
            }
        found = [p for p in msg.parts if is_attachment(p)]
        risky = [p for p in found if is_risky(p)]
        why: dict[str, str] = {}
        if found:
            names = ", ".join(p.filename or p.content_type for p in found[:5])
            why["has_attachment"] = f"{len(found)} attachment(s): {names}"
        if risky:
            why["risky"] = "risky: " + ", ".join(p.filename or p.content_type for p in risky[:5])
        return {
            "has_attachment": bool(found),
            "risky": bool(risky),
            "count": len(found),
            "total_size": sum(max(int(p.size or 0), 0) for p in found),
            "_why": why,
        }


MODULE = AttachmentsModule
