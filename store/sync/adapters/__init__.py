"""The adapters, by kind: :func:`adapter_for` builds the one a source names.

Modules are imported lazily, by name, so a source kind costs nothing until used.
"""

from __future__ import annotations

import importlib

from store.config import SourceConfig
from store.errors import ConfigError
from store.sync.adapter import Adapter

# kind -> (module, class)
ADAPTERS: dict[str, tuple[str, str]] = {
    "warden-feed": ("store.sync.adapters.warden_feed", "WardenFeed"),
    "x-usage": ("store.sync.adapters.x_usage", "XUsage"),
    "aws-usage-plan": ("store.sync.adapters.aws_usage_plan", "AwsUsagePlan"),
    "openai-usage": ("store.sync.adapters.openai_usage", "OpenAIUsage"),
}


def adapter_for(source: SourceConfig) -> Adapter:
    """The adapter for ``source.adapter``, configured from the source's options.

    Raises ``ConfigError`` for an unknown kind or bad options.
    """
    try:
        module_name, class_name = ADAPTERS[source.adapter]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(f"source {source.name!r}: unknown adapter {source.adapter!r} (known: {known})") from None
    module = importlib.import_module(module_name)
    adapter_class = getattr(module, class_name, None)
    if adapter_class is None:  # tolerate a module that names its class differently
        adapter_class = next(
            (value for value in vars(module).values()
             if isinstance(value, type) and getattr(value, "kind", None) == source.adapter),
            None,
        )
    if adapter_class is None:
        raise ConfigError(f"source {source.name!r}: adapter {source.adapter!r} is not available")
    return adapter_class(source)
