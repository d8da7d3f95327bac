"""The typed walk: every element of a resource with its FHIR type, from the R4B models.

The rules in :mod:`.rules` judge elements by type (``Period``, ``Reference``,
``dateTime``); this module finds those types by reading the fhir.resources R4B
model classes (cached per type), and walks a document iteratively so deep JSON
cannot exhaust the stack. :func:`known_type` lives here as the one lookup of
which resource types the models know; :mod:`.validate` uses it too.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

Json = dict[str, Any]
Loc = tuple[str | int, ...]


@lru_cache(maxsize=512)
def known_type(name: str) -> bool:
    """True for a concrete resource type the R4B models know."""
    from fhir.resources.R4B import get_fhir_model_class

    if not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", name) or name in {"Resource", "DomainResource"}:
        return False
    try:
        return bool(get_fhir_model_class(name).has_resource_base())
    except (ValueError, AttributeError):
        return False


class Node:
    """An element met on the walk, with what the rules need to judge it.

    A plain slotted class, not a (frozen) dataclass: the walk makes one per element
    of the document, and a frozen dataclass's ``__init__`` costs several times more.
    """

    __slots__ = ("bundle", "container", "epath", "ftype", "loc", "value")

    def __init__(
        self,
        loc: Loc,  # from the document root, as pydantic would give it
        value: Any,
        ftype: str | None,  # its FHIR type ("Period", "dateTime", "Resource"), None if unknown
        epath: str,  # element path inside its resource, without indices ("Encounter.status")
        container: Json | None,  # the resource a local "#id" reference resolves in
        bundle: Json | None,  # the nearest Bundle around it: the scope of urn:uuid references
    ) -> None:
        self.loc = loc
        self.value = value
        self.ftype = ftype
        self.epath = epath
        self.container = container
        self.bundle = bundle


# --- the walk ------------------------------------------------------------------------------


def walk(doc: Json, judged_types: frozenset[str]) -> Iterator[Node]:
    """Every element whose FHIR type is known from the R4B models, in document order.

    Iterative, so deep JSON cannot exhaust the stack. Resources of R4-only types
    are visited themselves but not entered: the models do not know their elements.
    Primitive values of a type no rule looks at (``string``, ``uri``, ...) are not
    visited: every rule would pass them (``judged_types`` names those that are).
    """
    stack = [Node((), doc, "Resource", "", None, None)]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node.value, dict):
            children = list(_children(node, judged_types))
            children.reverse()
            stack.extend(children)


def _children(node: Node, judged_types: frozenset[str]) -> Iterator[Node]:
    value = node.value
    if not isinstance(value, dict):
        return
    if node.ftype == "Resource":
        node = _enter_resource(node)
        if node.ftype is None:
            return
    fields = _fields(node.ftype or "")
    loc, container, bundle = node.loc, node.container, node.bundle
    for key, child in value.items():
        ftype = fields.get(key)
        if ftype is None:
            continue
        judged = ftype in judged_types  # else only objects can break a rule
        epath = f"{node.epath}.{key}"
        if isinstance(child, list):
            for i, item in enumerate(child):
                if judged or isinstance(item, dict):
                    yield Node((*loc, key, i), item, ftype, epath, container, bundle)
        elif judged or isinstance(child, dict):
            yield Node((*loc, key), child, ftype, epath, container, bundle)


def _enter_resource(node: Node) -> Node:
    """The same node seen from inside: typed as its resourceType, with its own scopes."""
    rtype = node.value.get("resourceType")
    if not isinstance(rtype, str) or not known_type(rtype):
        return Node(node.loc, node.value, None, node.epath, node.container, node.bundle)
    contained = len(node.loc) >= 2 and node.loc[-2] == "contained"
    container = node.container if contained and node.container is not None else node.value
    bundle = node.value if rtype == "Bundle" else node.bundle
    return Node(node.loc, node.value, rtype, rtype, container, bundle)


def _model(type_name: str) -> Any:
    """The R4B model class of a resource or complex type, None for primitives."""
    from fhir.resources.R4B import get_fhir_model_class

    if not type_name[:1].isupper():
        return None
    try:
        return get_fhir_model_class(type_name)
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _fields(type_name: str) -> dict[str, str]:
    """JSON key -> FHIR type name for a complex type or resource of the R4B models."""
    model = _model(type_name)
    out: dict[str, str] = {}
    for name, info in model.model_fields.items() if model else ():
        ftype = _type_name(info.annotation)
        if ftype is not None:
            out[info.alias or name] = ftype
    return out


@lru_cache(maxsize=1024)
def required_choices(type_name: str) -> dict[str, tuple[str, ...]]:
    """Choice groups of min 1 (``medication[x]``) -> their JSON keys."""
    model = _model(type_name)
    groups: dict[str, list[str]] = {}
    for name, info in model.model_fields.items() if model else ():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("one_of_many_required"):
            groups.setdefault(str(extra.get("one_of_many")), []).append(info.alias or name)
    return {group: tuple(keys) for group, keys in groups.items()}


def _type_name(annotation: Any) -> str | None:
    """``Optional[List[abc.PeriodType]]`` -> ``Period``; ``Annotated[str, DateTime()]``
    -> ``dateTime``; None for what is not a FHIR element (``fhir_comments``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        marker = type(annotation.__metadata__[0]).__name__
        return marker[:1].lower() + marker[1:]
    if origin in (typing.Union, types.UnionType, list):
        found = {_type_name(a) for a in typing.get_args(annotation) if a is not type(None)}
        return found.pop() if len(found) == 1 else None
    if annotation is bool:
        return "boolean"
    name = getattr(annotation, "__name__", "")
    if name == "FHIRPrimitiveExtensionType":
        return "Element"
    return name.removesuffix("Type") if name.endswith("Type") and name != "Type" else None
