"""The error family: what store/errors.py draws in its docstring is what it defines."""

from __future__ import annotations

import re

import store.errors as errors


def _drawn_hierarchy() -> dict[str, str | None]:
    """class name -> parent name, read from the tree in the module docstring."""
    doc = errors.__doc__ or ""
    tree = doc.split("Hierarchy::", 1)[1]
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []            # (depth, name) of the current branch
    for line in tree.splitlines():
        match = re.match(r"^[\s│├└─]*([A-Z][A-Za-z]+)\s", line)
        if not match:
            continue
        depth = match.start(1)                    # how far the drawing indents the name
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(1)] = stack[-1][1] if stack else None
        stack.append((depth, match.group(1)))
    return parents


def test_the_drawing_lists_the_whole_family() -> None:
    drawn = _drawn_hierarchy()
    assert drawn["WardenError"] is None
    assert drawn["FilterError"] == "ConfigError"
    assert drawn["PageRejected"] == "SyncError" and drawn["SourceStopped"] == "SyncError"
    assert len(drawn) == 12


def test_every_drawn_class_exists_and_subclasses_its_parent() -> None:
    for name, parent in _drawn_hierarchy().items():
        cls = getattr(errors, name)
        if parent is None:
            assert cls.__bases__ == (Exception,)
        else:
            assert cls.__bases__ == (getattr(errors, parent),), name
        assert issubclass(cls, errors.WardenError)
        # Each kind has its own notification title (the base class's is the fallback).
        assert cls is errors.WardenError or (cls.title and cls.title != errors.WardenError.title), name


def test_all_is_exactly_the_drawn_family() -> None:
    assert sorted(errors.__all__) == sorted(_drawn_hierarchy())
    defined = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == errors.__name__}
    assert defined == set(errors.__all__)
