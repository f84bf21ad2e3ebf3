"""The names derptool promises stay true: every library path the README names imports, and the exception
tree drawn in ``derptool.errors`` is the tree of classes, with their exit codes."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import derptool
from derptool import errors

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _readme_names() -> list[str]:
    """Every ``derptool.…`` path the README names: in backticks, listed after a module, or used in its examples."""
    text = " ".join(README.split())
    names = re.findall(r"`(derptool(?:\.\w+)+)`", text)
    for module, listed in re.findall(r"`(derptool(?:\.\w+)+)` \(((?:`\w+`,? ?)+)", text):
        names += [f"{module}.{name}" for name in re.findall(r"`(\w+)`", listed)]
    names += [f"derptool.hujson.{name}" for name in re.findall(r"`hujson\.(\w+)`", text)]
    for block in re.findall(r"```python\n(.*?)```", README, re.S):
        if "from derptool import hujson" in block:
            names += [f"derptool.hujson.{name}" for name in re.findall(r"\bhujson\.(\w+)\(", block)]
    return sorted(set(names))


def _resolve(dotted: str) -> Any:
    """The object *dotted* names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_readme_names_library_paths() -> None:
    names = _readme_names()
    for expected in ("derptool.net.netcheck.measure", "derptool.policy.engine.egress", "derptool.hujson.find"):
        assert expected in names  # the extraction above still finds each kind of mention


@pytest.mark.parametrize("dotted", _readme_names())
def test_every_path_the_readme_names_imports(dotted: str) -> None:
    assert _resolve(dotted) is not None


def test_the_netcheck_library_names_import() -> None:
    from derptool.net.netcheck import HomeChooser, make_plan, measure

    assert callable(make_plan) and callable(measure) and isinstance(HomeChooser, type)


def _drawn_tree() -> dict[str, tuple[str | None, int, str]]:
    """The tree drawn in ``errors``' docstring: name -> (parent, exit code, defining module)."""
    doc = errors.__doc__ or ""
    lines = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    drawn: dict[str, tuple[str | None, int, str]] = {}
    stack: list[str] = []
    for line in lines:
        m = re.match(r"^ {4}([ │]*(?:[├└]── )?)(\w+)\s+.*?\((\d)\b", line)
        assert m, line
        depth = len(m.group(1)) // 4
        stack[depth:] = [m.group(2)]
        home = re.search(r"defined in ([\w.]+)\)", line)
        parent = stack[depth - 1] if depth else None
        drawn[m.group(2)] = (parent, int(m.group(3)), home.group(1) if home else "derptool.errors")
    return drawn


def _every_error_class() -> dict[str, type[errors.DerptoolError]]:
    """Every subclass of DerptoolError in the package (every module imported first)."""
    for info in pkgutil.walk_packages(derptool.__path__, "derptool."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: dict[str, type[errors.DerptoolError]] = {}
    todo: list[type[errors.DerptoolError]] = [errors.DerptoolError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def test_the_drawn_exception_tree_is_the_tree_of_classes() -> None:
    drawn = _drawn_tree()
    classes = _every_error_class()
    assert set(drawn) == set(classes)
    for name, (parent, code, home) in drawn.items():
        cls = classes[name]
        bases = [b.__name__ for b in cls.__bases__ if issubclass(b, errors.DerptoolError)]
        assert bases == ([parent] if parent else []), name
        assert cls.exit_code == code, name
        assert cls.__module__ == home, name
