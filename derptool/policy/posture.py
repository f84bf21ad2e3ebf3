"""Device posture conditions: their grammar and what one condition says about a device's attributes.

A posture (``"postures": {"posture:name": [CONDITION, ...]}``) holds when every one of its conditions
holds. A condition names an attribute ``namespace:name`` (``node:os``, ``node:tsVersion``,
``custom:tier``, ``ip:country``) and optionally compares it::

    node:os == 'linux'              node:os != 'windows'
    node:tsVersion >= '1.60'        custom:score < 50
    node:os IN ['macos', 'linux']   node:os NOT IN ['windows']
    custom:managed IS SET           custom:quarantine NOT SET
    node:tsAutoUpdate               (a bare attribute: it is the boolean true)

Values are strings in single or double quotes, numbers, or ``true``/``false``; operator words are matched
without regard to case. An attribute a device does not have fails every condition but ``NOT SET``.
Ordering compares numbers as numbers and strings as versions (``1.8`` < ``1.60`` < ``1.60.1``; a
suffix after ``-``, as in ``1.80.0-t1234``, is ignored), falling back to text order when a string is no
version. :func:`parse_condition` raises :class:`PostureSyntaxError`; :meth:`Condition.evaluate` answers
``True``, ``False`` or ``None`` (the attribute is unknown).

This module is the grammar alone (validation uses it without the engine); the engine applies postures
to rules in :mod:`derptool.policy.engine.posture`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

Value = str | int | float | bool
"""A posture attribute value as a tailnet file gives it."""

_ATTR = re.compile(r"[A-Za-z][\w-]*:[\w.\-]+")
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>==|!=|<=|>=|<|>)|(?P<punct>[\[\],])"
    r"|(?P<word>[A-Za-z_][\w.\-:]*|[+-]?\d[\w.\-]*))"
)
ORDERING = ("<", "<=", ">", ">=")
OPERATORS = ("==", "!=", *ORDERING, "IN", "NOT IN", "IS SET", "NOT SET")


class PostureSyntaxError(ValueError):
    """A posture condition that does not parse; the message says what was expected."""


@dataclass(frozen=True)
class Condition:
    """One parsed condition: attribute, operator (one of :data:`OPERATORS`) and operand."""

    text: str
    attribute: str
    op: str
    values: tuple[Value, ...] = ()

    def evaluate(self, attributes: Mapping[str, Value | None] | None) -> bool | None:
        """Whether a device with *attributes* meets the condition; None when the attribute is unknown.

        *attributes* maps attribute keys to values; a key mapped to None is known to be unset; a key
        that is absent (or *attributes* None) is unknown.
        """
        if attributes is None or self.attribute not in attributes:
            return None
        value = attributes[self.attribute]
        if self.op == "IS SET":
            return value is not None
        if self.op == "NOT SET":
            return value is None
        if value is None:
            return False
        if self.op == "==":
            return _equal(value, self.values[0])
        if self.op == "!=":
            return not _equal(value, self.values[0])
        if self.op == "IN":
            return any(_equal(value, v) for v in self.values)
        if self.op == "NOT IN":
            return not any(_equal(value, v) for v in self.values)
        order = _compare(value, self.values[0])
        if order is None:
            return False
        return {"<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0}[self.op]


def _equal(a: Value, b: Value) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) != isinstance(b, str):
        return False
    return a == b


def version_key(text: str) -> tuple[int, ...] | None:
    """``1.80.0-t1234`` -> ``(1, 80, 0)``; None when *text* is no dotted version."""
    head = text.strip().split("-", 1)[0].split("+", 1)[0]
    parts = head.split(".")
    if not head or not all(p.isdigit() for p in parts):
        return None
    out = [int(p) for p in parts]
    while len(out) > 1 and out[-1] == 0:
        out.pop()  # 1.60 == 1.60.0
    return tuple(out)


def _compare(a: Value, b: Value) -> int | None:
    """-1, 0 or 1; None when the two cannot be ordered (booleans, a number against a string)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, str) and isinstance(b, str):
        ka, kb = version_key(a), version_key(b)
        if ka is not None and kb is not None:
            return (ka > kb) - (ka < kb)
        return (a > b) - (a < b)
    if isinstance(a, str) or isinstance(b, str):
        return None
    return (a > b) - (a < b)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise PostureSyntaxError(f"unexpected {text[pos:].strip()[:20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _literal(kind: str, token: str) -> Value:
    if kind == "str":
        return token[1:-1]
    if kind == "word":
        low = token.lower()
        if low in ("true", "false"):
            return low == "true"
        try:
            number = float(token) if any(c in token for c in ".eE") else int(token)
        except ValueError:
            pass
        else:
            if isinstance(number, float) and not math.isfinite(number):
                raise PostureSyntaxError(f"{token}: a number must be finite")
            return number
    raise PostureSyntaxError(f"{token!r} is no value: quote strings ('linux'), or give a number or true/false")


def attribute_values(data: object) -> dict[str, Value | None] | str:
    """A device's posture attributes from a tailnet file's ``"posture"`` object, or what is wrong with it.

    Keys are attribute names (``node:os``, ``custom:x``); values are strings, finite numbers, booleans,
    or null for an attribute known to be unset. An attribute that is absent is unknown.
    """
    if not isinstance(data, Mapping):
        return 'must be an object of attribute to value ({"node:os": "linux"})'
    out: dict[str, Value | None] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not _ATTR.fullmatch(key):
            return f"{key!r} is no attribute name: use <namespace>:<name>, such as node:os or custom:tier"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{key}: a number must be finite"
        if value is not None and not isinstance(value, str | int | float | bool):
            return f"{key}: a value is a string, a number, true/false, or null (known to be unset)"
        out[key] = value
    return out


def parse_condition(text: str) -> Condition:
    """Parse one posture condition (see the module doc); raises :class:`PostureSyntaxError`."""
    head = _ATTR.match(text.strip())
    if head is None or text.strip()[head.end() :][:1] not in ("", " ", "\t", "=", "!", "<", ">"):
        raise PostureSyntaxError("expected <namespace>:<attribute> [<operator> <value>]")
    toks = _tokens(text)
    attr = toks[0][1]
    rest = toks[1:]
    words = [t[1].upper() for t in rest]
    if not rest:
        return Condition(text, attr, "==", (True,))
    if words in (["IS", "SET"], ["NOT", "SET"]):
        return Condition(text, attr, " ".join(words))
    if rest[0][0] == "op":
        if len(rest) != 2:
            raise PostureSyntaxError(f"{rest[0][1]} takes one value")
        return Condition(text, attr, rest[0][1], (_literal(*rest[1]),))
    if words[:1] == ["IN"] or words[:2] == ["NOT", "IN"]:
        op = "IN" if words[0] == "IN" else "NOT IN"
        items = rest[1:] if op == "IN" else rest[2:]
        if len(items) < 2 or items[0] != ("punct", "[") or items[-1] != ("punct", "]"):
            raise PostureSyntaxError(f"{op} takes a list: {op} ['a', 'b']")
        values: list[Value] = []
        expect_value = True
        for kind, tok in items[1:-1]:
            if expect_value:
                values.append(_literal(kind, tok))
            elif (kind, tok) != ("punct", ","):
                raise PostureSyntaxError(f"{op} list items are separated by commas")
            expect_value = not expect_value
        return Condition(text, attr, op, tuple(values))
    raise PostureSyntaxError(f"unknown operator {rest[0][1]!r}: use one of {', '.join(OPERATORS)}")


__all__ = [
    "OPERATORS",
    "Condition",
    "PostureSyntaxError",
    "Value",
    "attribute_values",
    "parse_condition",
    "version_key",
]
