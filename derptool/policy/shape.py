"""The shape check: plain data against the policy models, as Go's ``encoding/json`` decodes it.

Keys of model objects match the models' names case-insensitively (an exact match wins), unknown keys are
reported as ``json: unknown field "x"`` like Tailscale's server, wrong value types as Go's
``json: cannot unmarshal ...``. ``null`` is accepted everywhere and means the zero value.

The result is *canonical* data (keys renamed to the documented spelling, ``null`` members dropped) for the
semantic checks and the policy engine, plus the renames needed to map a canonical path back to the keys the
file uses. This walk is the one place that canonicalises policy data.

The :class:`Spec` of a whole policy is derived from the models (:func:`model_spec`) and also committed as data
(``derptool/data/policy-shape.json``, kept fresh by a test; ``python -m derptool.policy.schema`` rewrites it):
:func:`policy_spec` reads that, so that reading a policy for the engine does not build the pydantic models,
which costs more than the rest of the engine's start-up.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from derptool._bundled import data_bytes
from derptool._types import JsonPath
from derptool.policy.problems import Finding

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class Spec:
    """What a value must look like: a JSON kind, its element spec, or a model's members."""

    kind: str  # "str" "bool" "int" "float" "any" "list" "dict" "model"
    go: str  # the Go type name used in messages
    item: Spec | None = None
    int_keys: bool = False
    nullable_items: bool = False
    members: dict[str, tuple[str, Spec]] = field(default_factory=dict)  # lower name -> (name, spec)
    names: frozenset[str] = frozenset()


_GO_INT = re.compile(r"[+-]?[0-9]+")
"""What Go's strconv.Atoi reads: ASCII digits with an optional sign (no spaces, underscores, other digits)."""


class DictWithDuplicates(dict[str, Any]):
    """A decoded JSON object that remembers keys given more than once (the last value is kept)."""

    __slots__ = ("duplicates",)
    duplicates: list[str]

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.duplicates = []
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen and key not in self.duplicates:
                self.duplicates.append(key)
            seen.add(key)


def object_from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A decoded JSON object (``json.loads``' ``object_pairs_hook``): a plain dict, or a
    :class:`DictWithDuplicates` when a key is given more than once (most objects pay nothing for the check)."""
    out = dict(pairs)
    return out if len(out) == len(pairs) else DictWithDuplicates(pairs)


_SCALARS = {str: ("str", "string"), bool: ("bool", "bool"), int: ("int", "int"), float: ("float", "float64")}


def _spec(annotation: Any) -> Spec:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        spec = _spec(inner[0]) if len(inner) == 1 else Spec("any", "interface {}")
        return spec
    if annotation in _SCALARS:
        kind, go = _SCALARS[annotation]
        return Spec(kind, go)
    if annotation is Any:
        return Spec("any", "interface {}")
    if origin is list:
        item = _spec(args[0])
        return Spec("list", "[]" + item.go, item=item)
    if origin is dict:
        item = _spec(args[1])
        nullable = any(a is type(None) for a in typing.get_args(args[1]))
        int_keys = args[0] is int
        return Spec(
            "dict",
            f"map[{'int' if int_keys else 'string'}]{item.go}",
            item=item,
            int_keys=int_keys,
            nullable_items=nullable,
        )
    if isinstance(annotation, type) and (hasattr(annotation, "model_fields") or dataclasses.is_dataclass(annotation)):
        return model_spec(annotation)
    raise TypeError(f"unsupported annotation {annotation!r}")  # pragma: no cover - programming error


@functools.cache
def model_spec(model: type[Any]) -> Spec:
    """The :class:`Spec` of a pydantic model, or of a dataclass whose fields give their JSON name as ``alias``
    metadata (the DERP map types), cached."""
    members: dict[str, tuple[str, Spec]] = {}
    hints = typing.get_type_hints(model)
    if dataclasses.is_dataclass(model):
        aliases = {
            f.name: f.metadata.get("alias", f.name) for f in dataclasses.fields(model) if not f.metadata.get("internal")
        }
    else:
        aliases = {name: info.alias or name for name, info in model.model_fields.items()}
    for name, alias in aliases.items():
        members[alias.lower()] = (alias, _spec(hints[name]))
    return Spec("model", model.__name__, members=members, names=frozenset(a for a, _ in members.values()))


def spec_data(spec: Spec) -> dict[str, Any]:
    """*spec* as plain JSON data (what :func:`spec_from_data` reads back), defaults left out."""
    out: dict[str, Any] = {"kind": spec.kind, "go": spec.go}
    if spec.item is not None:
        out["item"] = spec_data(spec.item)
    if spec.int_keys:
        out["int_keys"] = True
    if spec.nullable_items:
        out["nullable_items"] = True
    if spec.members:
        out["members"] = {lower: [name, spec_data(member)] for lower, (name, member) in spec.members.items()}
    return out


def spec_from_data(data: Mapping[str, Any]) -> Spec:
    """The :class:`Spec` written by :func:`spec_data`."""
    item = data.get("item")
    members = {lower: (name, spec_from_data(member)) for lower, (name, member) in data.get("members", {}).items()}
    return Spec(
        data["kind"],
        data["go"],
        item=None if item is None else spec_from_data(item),
        int_keys=data.get("int_keys", False),
        nullable_items=data.get("nullable_items", False),
        members=members,
        names=frozenset(name for name, _ in members.values()),
    )


POLICY_SPEC_FILE = Path(__file__).resolve().parent.parent / "data" / "policy-shape.json"
"""Where ``python -m derptool.policy.schema`` writes the committed :class:`Spec` (a checkout's file)."""


@functools.cache
def policy_spec() -> Spec:
    """The :class:`Spec` of a whole policy file, read from the committed data (see the module docstring)."""
    return spec_from_data(json.loads(data_bytes("policy-shape.json")))


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "null"


_ZERO: dict[str, Any] = {"str": "", "bool": False, "int": 0, "float": 0.0, "any": None}


class _Invalid:
    """Stands for a value of the wrong type in canonical data: present, but of no type the checks use."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


def _same_or(value: list[Any], walked: list[Any]) -> list[Any]:
    """*value* itself when walking changed none of its items (canonical data shares what needs no change, so
    a large policy is not held twice), else *walked*."""
    return value if all(w is v for w, v in zip(walked, value, strict=True)) else walked


def _same_dict(value: dict[Any, Any], out: dict[Any, Any]) -> bool:
    """True when *out* has exactly *value*'s keys, in order, each with the identical value."""
    if len(out) != len(value):
        return False
    return all(k1 is k2 or k1 == k2 for k1, k2 in zip(value, out, strict=True)) and all(
        out[k] is v for k, v in value.items()
    )


class ShapeChecker:
    """Walks data against a :class:`Spec`; collects findings and key renames."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.renames: dict[JsonPath, str] = {}

    def _type_error(self, value: Any, spec: Spec, path: JsonPath) -> None:
        kind = _kind_of(value)
        if kind == "number" and spec.kind == "int":
            kind = f"number {value}"
        self.findings.append(Finding(path, f"json: cannot unmarshal {kind} into Go value of type {spec.go}"))

    def walk(self, value: Any, spec: Spec, path: JsonPath, cpath: JsonPath) -> Any:
        """Return the canonical form of *value*, or :data:`INVALID` where it has the wrong type."""
        kind = spec.kind
        if kind == "any":
            return value
        if value is None:
            if kind == "list":
                return []
            if kind in ("dict", "model"):
                return {}
            return _ZERO[kind]
        if kind == "str":
            if isinstance(value, str):
                return value
        elif kind == "bool":
            if isinstance(value, bool):
                return value
        elif kind == "int":
            if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
                return value
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
                return int(value)
        elif kind == "float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif kind == "list":
            if isinstance(value, list):
                assert spec.item is not None
                item = spec.item
                if item.kind == "str" and all(type(v) is str for v in value):
                    return value  # already canonical
                walked = [self.walk(v, item, (*path, i), (*cpath, i)) for i, v in enumerate(value)]
                return _same_or(value, walked)
        elif kind == "dict":
            if isinstance(value, Mapping):
                return self._dict(value, spec, path, cpath)
        elif kind == "model" and isinstance(value, Mapping):
            return self._model(value, spec, path, cpath)
        self._type_error(value, spec, path)
        return INVALID

    def _duplicates(self, value: Mapping[str, Any], path: JsonPath) -> None:
        for key in getattr(value, "duplicates", ()):
            self.findings.append(
                Finding((*path, key), f'duplicate key "{key}": only the last value counts', "warning", at_key=True)
            )

    def _dict(self, value: Mapping[str, Any], spec: Spec, path: JsonPath, cpath: JsonPath) -> dict[Any, Any]:
        self._duplicates(value, path)
        assert spec.item is not None
        item = spec.item
        out: dict[Any, Any] = {}
        for key, v in value.items():
            ckey: Any = key
            if spec.int_keys:
                try:
                    if not _GO_INT.fullmatch(key):
                        raise ValueError(key)
                    ckey = int(key, 10)
                except ValueError:
                    self.findings.append(
                        Finding(
                            (*path, key), f"json: cannot unmarshal number {key} into Go value of type int", at_key=True
                        )
                    )
                    continue
                self.renames[(*cpath, ckey)] = key
            if v is None and spec.nullable_items:
                out[ckey] = None
                continue
            out[ckey] = self.walk(v, item, (*path, key), (*cpath, ckey))
        return value if isinstance(value, dict) and _same_dict(value, out) else out

    def _model(self, value: Mapping[str, Any], spec: Spec, path: JsonPath, cpath: JsonPath) -> dict[str, Any]:
        self._duplicates(value, path)
        out: dict[str, Any] = {}
        seen: dict[str, str] = {}
        for key, v in value.items():
            if key in spec.names:
                name, member = spec.members[key.lower()]
            else:
                found = spec.members.get(key.lower())
                if found is None:
                    self.findings.append(Finding((*path, key), f'json: unknown field "{key}"', at_key=True))
                    continue
                name, member = found
            if name in seen and seen[name] != key:
                self.findings.append(
                    Finding(
                        (*path, key),
                        f'keys "{seen[name]}" and "{key}" differ only in case: Go reads both into one field and '
                        "keeps the later, so the file says two things; keep one of them",
                        at_key=True,
                        also=(*path, seen[name]),
                    )
                )
            elif name in seen:
                self.findings.append(
                    Finding(
                        (*path, key),
                        f'duplicate key "{key}" (same as "{seen[name]}"): only the last value counts',
                        "warning",
                        at_key=True,
                    )
                )
            seen[name] = key
            if key != name:
                self.renames[(*cpath, name)] = key
            if v is None:
                out.pop(name, None)
                continue
            out[name] = self.walk(v, member, (*path, key), (*cpath, name))
        return value if isinstance(value, dict) and _same_dict(value, out) else out

    def original_path(self, cpath: JsonPath) -> JsonPath:
        """Map a path in the canonical data to the keys the file uses."""
        if not self.renames:
            return cpath
        out: list[str | int] = []
        for i, part in enumerate(cpath):
            out.append(self.renames.get(cpath[: i + 1], part))
        return tuple(out)


def check_shape(data: Any, model: type[BaseModel] | Spec) -> tuple[Any, ShapeChecker]:
    """Check *data* against *model* (or its :class:`Spec`); return the canonical data and the checker
    (findings, renames)."""
    spec = model if isinstance(model, Spec) else model_spec(model)
    checker = ShapeChecker()
    if not isinstance(data, Mapping):
        checker.findings.append(Finding((), f"json: cannot unmarshal {_kind_of(data)} into Go value of type {spec.go}"))
        return {}, checker
    canonical = checker.walk(data, spec, (), ())
    return canonical, checker
