"""The adapters, by kind: the one registry of source kinds.

:data:`ADAPTERS` is the list the configuration reader checks ``adapter = ...``
and the adapter's own keys against (each class declares them as ``OPTIONS``);
:func:`adapter_for` builds the adapter a source names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.errors import ConfigError
from store.sync.adapter import Adapter
from store.sync.adapters.aws_usage_plan import AwsUsagePlan
from store.sync.adapters.http_json import HttpJson
from store.sync.adapters.openai_usage import OpenAIUsage
from store.sync.adapters.warden_feed import WardenFeed
from store.sync.adapters.x_usage import XUsage

if TYPE_CHECKING:
    from store.config import SourceConfig

# kind -> class, in the order messages list them.
ADAPTERS: dict[str, type[Adapter]] = {
    adapter.kind: adapter for adapter in (XUsage, AwsUsagePlan, OpenAIUsage, WardenFeed, HttpJson)
}


def source_problem(source: SourceConfig) -> str | None:
    """What the source's adapter finds wrong with the source beyond its options'
    types (``ChecksSource``), never quoting a value; ``None`` when nothing is.
    The configuration reader calls it for every source."""
    check = getattr(ADAPTERS.get(source.adapter), "check_source", None)
    return check(source) if check is not None else None


def adapter_for(source: SourceConfig) -> Adapter:
    """The adapter for ``source.adapter``, configured from the source's options.

    Raises ``ConfigError`` for an unknown kind or bad options.
    """
    adapter_class = ADAPTERS.get(source.adapter)
    if adapter_class is None:
        known = ", ".join(ADAPTERS)
        raise ConfigError(f"source {source.name!r}: unknown adapter {source.adapter!r} (known: {known})")
    return adapter_class(source)
