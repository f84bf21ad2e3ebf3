"""Reading one external document through a typed model: each value is checked for the type its field
needs, and a value of the wrong type stops the import with one line naming the field.

A :class:`Doc` is the document (its file name and what it is, e.g. ``tailscale status --json``); a
:class:`Field` is a place in it (``Peer["nodekey:ab"].TailscaleIPs[1]``) with typed readers that return
the value or raise :class:`~derptool.policy.engine.tailnet.TailnetError`. Numbers must be JSON integers in
range (``1e999``, ``NaN``, ``true`` and ``"7"`` are not user IDs), addresses and prefixes are parsed, and
a missing optional member reads as its empty value.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from derptool.fileio import check_document_limits, room_for_depth
from derptool.policy.engine.addresses import parse_addr
from derptool.policy.engine.tailnet import TailnetError, _object

MAX_ID = (1 << 63) - 1
"""The largest ID a control server writes (Go's int64 and headscale's uint64 as tailnets use them)."""


@dataclass(frozen=True)
class Doc:
    """An external document being imported: its file name and the tool whose output it is."""

    file: str
    kind: str

    def error(self, message: str) -> TailnetError:
        """An error about the whole document."""
        return TailnetError(f"{message} (reading {self.kind})", file=self.file)

    def root(self, value: Any) -> Field:
        """The document's top-level value as a field."""
        return Field(self, "", value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number" if math.isfinite(value) else "a non-finite number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


@dataclass(frozen=True)
class Field:
    """One value of a :class:`Doc` and its path (for messages)."""

    doc: Doc
    path: str
    value: Any

    @property
    def where(self) -> str:
        """The path as a user reads it (``<top>`` for the document itself)."""
        return self.path or "the top level"

    def fail(self, need: str) -> TailnetError:
        """An error saying this field is not what it must be."""
        return self.doc.error(f"{self.where} must be {need}, not {_type_name(self.value)}")

    def member(self, key: str) -> Field:
        """The member *key* of this object (its value None when absent)."""
        obj = self.object()
        path = f"{self.path}.{key}" if self.path else key
        return Field(self.doc, path, obj.get(key))

    def has(self, key: str) -> bool:
        """Whether this object has member *key* with a value other than null."""
        return self.object().get(key) is not None

    def object(self) -> Mapping[str, Any]:
        """This value as a JSON object."""
        if not isinstance(self.value, Mapping):
            raise self.fail("an object")
        return self.value

    def items(self) -> Iterator[tuple[str, Field]]:
        """The members of this object (null reads as no members)."""
        if self.value is None:
            return
        for key, value in self.object().items():
            yield key, Field(self.doc, f"{self.path}[{json.dumps(key)}]", value)

    def elements(self) -> Iterator[Field]:
        """The elements of this list (null reads as an empty list)."""
        if self.value is None:
            return
        if not isinstance(self.value, list):
            raise self.fail("a list")
        for i, value in enumerate(self.value):
            yield Field(self.doc, f"{self.path}[{i}]", value)

    def text(self, *, default: str | None = "") -> str:
        """This value as a string (null: *default*; no default: null is refused)."""
        if self.value is None and default is not None:
            return default
        if not isinstance(self.value, str):
            raise self.fail("a string")
        return self.value

    def texts(self) -> tuple[str, ...]:
        """This value as a list of strings (null: empty)."""
        return tuple(e.text(default=None) for e in self.elements())

    def integer(self, *, low: int = 0, high: int = MAX_ID) -> int:
        """This value as a JSON integer between *low* and *high*."""
        v = self.value
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.fail(f"an integer ({low} to {high})")
        if not low <= v <= high:
            raise self.doc.error(f"{self.where} must be an integer from {low} to {high}, not {v}")
        return v

    def flag(self) -> bool:
        """This value as a boolean (null: false)."""
        if self.value is None:
            return False
        if not isinstance(self.value, bool):
            raise self.fail("true or false")
        return self.value

    def address(self) -> tuple[int, int, str]:
        """This value as an IP address: ``(version, number, canonical text)``."""
        text = self.text(default=None)
        try:
            if "/" in text or not text.strip() or text != text.strip():
                raise ValueError(text)
            return parse_addr(text)
        except ValueError:
            raise self.doc.error(f"{self.where}: {text!r} is not an IP address") from None

    def addresses(self) -> list[tuple[int, int, str]]:
        """This value as a list of IP addresses."""
        return [e.address() for e in self.elements()]

    def prefix(self) -> str:
        """This value as a CIDR prefix (or a single address), in canonical text."""
        text = self.text(default=None)
        try:
            if "-" in text or not text.strip() or text != text.strip():
                raise ValueError(text)
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise self.doc.error(f"{self.where}: {text!r} is not a CIDR prefix (like 10.0.0.0/24)") from None

    def prefixes(self) -> tuple[str, ...]:
        """This value as a list of CIDR prefixes."""
        return tuple(e.prefix() for e in self.elements())


def decode(src: bytes, file: str) -> Any:
    """The JSON (or HuJSON) value of *src*; duplicated object members are kept visible (see ``tailnet``)."""
    check_document_limits(src, file)
    try:
        with room_for_depth():
            return json.loads(src, object_pairs_hook=_object)  # plain JSON (the usual case) without HuJSON
    except RecursionError:
        raise TailnetError("nested too deeply to read", file=file) from None
    except ValueError:
        pass
    # lazy: importing hujson costs more start-up than the whole engine, and plain JSON needs none
    from derptool.hujson import HuJSONError, standardize

    try:
        with room_for_depth():
            return json.loads(standardize(src), object_pairs_hook=_object)
    except HuJSONError as err:
        raise TailnetError(err.reason, file=file, line=err.line, column=err.column) from None
    except RecursionError:
        raise TailnetError("nested too deeply to read", file=file) from None
    except ValueError as err:
        raise TailnetError(f"not JSON: {err}", file=file) from None


__all__ = ["MAX_ID", "Doc", "Field", "decode"]
