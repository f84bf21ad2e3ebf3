"""Text conventions of Go that HuJSON's messages and decoding follow (byte-exact with Go's library).

``go_quote`` is Go's ``%q`` of a string, ``quote_char`` Go's ``%q``-style naming of one character in
an error, ``decode_string`` Go's ``encoding/json`` decoding of a string literal (each invalid UTF-8
byte and each lone surrogate escape becomes U+FFFD), ``rstrip_space`` Go's ``unicode.IsSpace`` trim.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata

# Go's unicode.IsSpace, as a str for rstrip.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHORT = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _per_byte(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("derptool.hujson.gobytes", _per_byte)


def go_text(b: bytes) -> str:
    """*b* decoded as Go does when it ranges over a string: one U+FFFD per invalid byte."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("utf-8", "derptool.hujson.gobytes")


def decode_string(raw: bytes) -> str:
    """The value of a valid string literal, decoded as Go's ``encoding/json`` does."""
    s = json.loads(go_text(raw))
    assert isinstance(s, str)
    return _SURROGATE.sub("\ufffd", s) if "\\" in s or b"\\" in raw else s


def fix_surrogates(s: str) -> str:
    """*s* with lone surrogates (from escapes) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", s)


def is_print(ch: str) -> bool:
    """Go's ``unicode.IsPrint``: letters, marks, numbers, punctuation, symbols and ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def quote_char(b: bytes, pos: int) -> str:
    """The character at *pos* of *b* as Go's hujson names it in errors (``'c'``, ``'\\xff'``, ``'\\u00a0'``)."""
    chunk = b[pos : pos + 4]
    ch = ""
    for size in (1, 2, 3, 4):
        try:
            ch = chunk[:size].decode("utf-8")
        except UnicodeDecodeError:
            continue
        break
    if not ch:
        return f"'\\x{b[pos]:02x}'"
    if is_print(ch):
        return "'\\''" if ch == "'" else ("'\\\\'" if ch == "\\" else f"'{ch}'")
    cp = ord(ch)
    return f"'\\u{cp:04x}'" if cp <= 0xFFFF else f"'\\U{cp:08x}'"


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (``%q``) of a valid string."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif is_print(ch):
            out.append(ch)
        else:
            cp = ord(ch)
            if cp in _SHORT:
                out.append(_SHORT[cp])
            elif cp < 0x20 or cp == 0x7F:
                out.append(f"\\x{cp:02x}")
            elif 0xD800 <= cp <= 0xDFFF:
                out.append("\\ufffd")
            elif cp <= 0xFFFF:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def encode_string(s: str) -> bytes:
    """A string literal as Go's ``hujson.String`` writes it (only ``"``, ``\\`` and controls escaped)."""
    if _SURROGATE.search(s):
        s = _SURROGATE.sub("\ufffd", s)
    return json.dumps(s, ensure_ascii=False).encode("utf-8")


def rstrip_space(b: bytes) -> bytes:
    """*b* (valid UTF-8) without trailing Go ``unicode.IsSpace`` characters."""
    if b.isascii():
        return b.rstrip(b" \t\n\v\f\r")
    return b.decode("utf-8").rstrip(GO_SPACE).encode("utf-8")
