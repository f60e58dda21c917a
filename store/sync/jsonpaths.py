"""JMESPath expressions as the ``http-json`` adapter uses them: compiled once,
evaluated in one of three scopes, and able to say where in the page a value was.

A path is evaluated against the *item* (a row, or an element of its ``each``
list); ``^expr`` against the row the item belongs to; ``$expr`` (or ``$.expr``)
against the whole page. JMESPath itself has no such prefixes, so they cannot be
mistaken for an expression.

Most paths are plain field and index chains (``client_app_id``,
``usage.calls``, ``[0]``): those are read with direct lookups instead of the
JMESPath interpreter, which is ten times slower, on the hot path of a sync.
Either way the value is the one JMESPath defines (missing or mistyped steps
give ``None``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from store.errors import PageRejected

Scope = str   # "item" | "row" | "page"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PathError(ValueError):
    """A key's value is not a JMESPath expression (the message says why)."""


@dataclass(frozen=True)
class JsonPath:
    """One compiled path of the configuration, with its scope."""

    text: str                    # as configured, prefix included
    expression: str              # without the prefix
    scope: Scope
    compiled: Any
    steps: tuple[str | int, ...] | None    # a plain chain of fields and indexes, or None

    @classmethod
    def compile(cls, text: str, *, scopes: bool = True) -> "JsonPath":
        """Compile ``text``; ``scopes``: whether ``^`` and ``$`` prefixes are allowed.
        Raises :class:`PathError`."""
        scope, expression = "item", text.strip()
        if expression[:1] in ("^", "$"):
            if not scopes:
                raise PathError(f"a scope prefix ({expression[0]}) has no meaning here: the page is the scope")
            scope = "row" if expression[0] == "^" else "page"
            expression = expression[1:].lstrip(".").strip() or "@"
        try:
            compiled = jmespath.compile(expression)
        except JMESPathError as exc:
            raise PathError(f"not a JMESPath expression: {_first_line(exc)}") from None
        return cls(text, expression, scope, compiled, _steps(compiled.parsed))

    def value(self, item: Any, row: Any = None, page: Any = None) -> Any:
        """The value at this path, in its scope (``None`` when there is none);
        raises ``PageRejected`` when a JMESPath function meets a type it refuses."""
        target = item if self.scope == "item" else row if self.scope == "row" else page
        steps = self.steps
        if steps is not None:
            for step in steps:
                if type(step) is str:
                    target = target.get(step) if type(target) is dict else None
                elif type(target) is list:
                    try:
                        target = target[step]
                    except IndexError:
                        return None
                else:
                    return None
            return target
        try:
            return self.compiled.search(target)
        except (JMESPathError, TypeError, ValueError, RecursionError) as exc:
            raise PageRejected(f"{self.text}: {_first_line(exc)}", path="$") from None

    def where(self, item_path: str, row_path: str = "$") -> str:
        """Where the value came from, as a JSON path (``$.data[3].usage``), given
        the JSON paths of the item and of its row."""
        base = item_path if self.scope == "item" else row_path if self.scope == "row" else "$"
        if self.steps is None:
            return f"{base} | {self.expression}"
        out = base
        for step in self.steps:
            if isinstance(step, int):
                out += f"[{step}]"
            elif _IDENTIFIER.fullmatch(step):
                out += f".{step}"
            else:
                out += "[" + repr(step) + "]"
        return out


def _steps(node: dict[str, Any]) -> tuple[str | int, ...] | None:
    """The fields and indexes of a plain chain (``a.b[0].c``, ``@``), else ``None``."""
    kind = node["type"]
    if kind in ("current", "identity"):
        return ()
    if kind in ("field", "index"):
        return (node["value"],)
    if kind in ("index_expression", "subexpression"):
        parts = [_steps(child) for child in node["children"]]
        if any(part is None for part in parts):
            return None
        return tuple(step for part in parts for step in part)  # type: ignore[union-attr]
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
