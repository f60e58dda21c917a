"""The template environment of notes: Jinja2 with every value escaped for
Markdown (or HTML for ``*.html.j2``), the built-in templates overridable from a
folder, and errors that name the template file and line.
"""

from __future__ import annotations

import os
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from store.errors import TemplateError, WardenError
from store.notes.markdown import Markdown, md_escape
from store.notes.wording import human_date, id_ranges, more_than, num

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _finalize(value: Any) -> str:
    # Autoescape for Markdown: every {{ value }} renders literally unless marked raw.
    if isinstance(value, Markdown):
        return value
    if value is None:
        return ""
    return md_escape(value)


def _environment(template_dir: str | None, markdown: bool) -> jinja2.Environment:
    """The (cached) environment for the templates as they are now in ``template_dir``.

    The cache key includes the override files' names and modification times: a
    compiled built-in template must not hide an override that appeared since.
    """
    overrides: tuple[tuple[str, int], ...] = ()
    if template_dir:
        try:
            overrides = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(template_dir)))
        except OSError:
            overrides = ()
    return _compiled_environment(template_dir, markdown, overrides)


@lru_cache(maxsize=16)
def _compiled_environment(template_dir: str | None, markdown: bool,
                          overrides: tuple[tuple[str, int], ...]) -> jinja2.Environment:
    """Markdown templates escape every value for Markdown; HTML templates (``*.html.j2``) for HTML."""
    paths = ([template_dir] if template_dir else []) + [str(BUILTIN_TEMPLATES)]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize if markdown else (lambda v: "" if v is None else v),
        autoescape=not markdown,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=num, more_than=more_than, human_date=human_date, id_ranges=id_ranges,
        upper_first=lambda v: str(v)[:1].upper() + str(v)[1:],
    )
    if markdown:
        env.filters.update(raw=lambda v: Markdown("" if v is None else v), md=md_escape)
    return env


def render_template(name: str, context: dict[str, Any], *, template_dir: Path | str | None = None) -> str:
    """Render template ``name`` (override in ``template_dir`` first, then built-in).

    Templates named ``*.html.j2`` are HTML-autoescaped; all others are Markdown,
    every value escaped by :func:`md_escape` unless piped through ``|raw``.
    Raises TemplateError naming the file and line for a syntax error, an undefined
    variable or any other failure while rendering.
    """
    env = _environment(str(template_dir) if template_dir else None, not name.endswith(".html.j2"))
    try:
        template = env.get_template(name)
        return template.render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(env.loader.searchpath) if isinstance(env.loader, jinja2.FileSystemLoader) else "?"
        raise TemplateError(f"template {exc.name!r} not found (looked in {searched})") from None
    except WardenError:
        raise
    except Exception as exc:  # undefined variable, bad filter argument, ...: name the line
        where = _template_frame(exc) or name
        message = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message else str(exc)
        raise TemplateError(f"{where}: {type(exc).__name__}: {message}") from None


def _template_frame(exc: BaseException) -> str | None:
    """``file:line`` of the innermost template frame of ``exc`` (Jinja maps its frames to template lines)."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2"):
            found = f"{frame.filename}:{frame.lineno}"
    return found
