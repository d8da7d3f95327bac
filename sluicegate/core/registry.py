"""Resolve plug-ins named in config ("package.module:attr") at run time.

This is how core reaches adapters and inference without importing them: new
domains and backends plug in by naming their factory in the YAML file.
"""

from __future__ import annotations

import importlib
from typing import Any


class PluginError(Exception):
    """A factory path in config does not name an importable object."""


def load_object(path: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(f"{path!r} is not of the form 'package.module:attr'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj
