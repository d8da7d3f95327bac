"""De-identification profiles: rules as data, loaded and validated.

A profile is an ordered list of FHIR path rules and HL7 v2 field rules
(``profiles/default.yaml``, documented in docs/privacy.md); the first rule that
matches wins. A bad rule raises ProfileError naming it, so a channel's override
fails at config load, not mid-message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from sluicegate.core.privacy.rules.fhir import FhirRules

METHODS = frozenset({"redact", "pseudonymize", "date_shift", "generalize", "keep", "text"})
HL7_TYPES = frozenset(
    {"CX", "EI", "ST", "ID", "IS", "XPN", "XCN", "NDL", "XAD", "XTN", "TS", "DT", "DTM", "TX", "FT"}
)
DEFAULT_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "default.yaml"


class ProfileError(ValueError):
    """A de-identification profile is invalid; the message names the rule."""


@dataclass(frozen=True)
class Rule:
    """One rule: where (a FHIR path or an HL7 field), what to do, and what it harvests."""

    target: str
    method: str
    kind: str | None = None
    harvest: bool = True
    type: str = "ST"

    @property
    def harvests(self) -> bool:
        return bool(self.kind) and self.harvest and self.method not in ("keep", "text")


@dataclass(frozen=True)
class Profile:
    """An ordered rule set; the first rule that matches wins."""

    name: str
    fhir: tuple[Rule, ...]
    hl7: tuple[Rule, ...]

    @cached_property
    def fhir_matcher(self) -> FhirRules:
        """The FHIR rules compiled for matching (built once per profile)."""
        from sluicegate.core.privacy.rules.fhir import FhirRules

        return FhirRules(self.fhir)

    @cached_property
    def hl7_index(self) -> dict[str, dict[int, Rule]]:
        """Segment id -> field number -> rule, filled as segments are met."""
        return {}

    def with_overrides(self, fhir: Sequence[Rule] = (), hl7: Sequence[Rule] = ()) -> Profile:
        """This profile with ``fhir``/``hl7`` rules put in front (so they win)."""
        return Profile(self.name, (*fhir, *self.fhir), (*hl7, *self.hl7))


# --- loading ----------------------------------------------------------------------------


def parse_rules(items: Any, domain: str, source: str) -> tuple[Rule, ...]:
    """Validate raw rule mappings; a bad one raises ProfileError naming it."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ProfileError(f"{source}: {domain} must be a list of rules")
    key = "path" if domain == "fhir" else "field"
    rules: list[Rule] = []
    for i, raw in enumerate(items):
        where = f"{source}: {domain} rule {i + 1}"
        if not isinstance(raw, Mapping):
            raise ProfileError(f"{where}: a rule is a mapping with {key!r} and 'method'")
        target = raw.get(key)
        where += f" ({target})" if isinstance(target, str) else ""
        unknown = set(raw) - {key, "method", "kind", "harvest", "type"}
        if unknown:
            raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(target, str) or not target.strip():
            raise ProfileError(f"{where}: {key!r} is required")
        method = raw.get("method")
        if method not in METHODS:
            raise ProfileError(f"{where}: method must be one of {sorted(METHODS)}")
        kind = raw.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise ProfileError(f"{where}: kind must be a string")
        if method == "pseudonymize" and not kind:
            raise ProfileError(f"{where}: pseudonymize needs a kind")
        if domain == "fhir" and not re.fullmatch(r"[A-Za-z*?\[\]]+(\.[\w*?\[\]]+)+", target):
            raise ProfileError(f"{where}: path must be ResourceType.element[.element...]")
        rtype = str(raw.get("type", "ST"))
        if domain == "hl7":
            if not re.fullmatch(r"[A-Z0-9*?]{1,3}-(\d{1,3}|\*)", target):
                raise ProfileError(f"{where}: field must look like PID-5 or Z*-*")
            if rtype not in HL7_TYPES:
                raise ProfileError(f"{where}: type must be one of {sorted(HL7_TYPES)}")
        harvest = raw.get("harvest", True)
        if not isinstance(harvest, bool):
            raise ProfileError(f"{where}: harvest must be true or false")
        rules.append(Rule(target, method, kind, harvest, rtype))
    return tuple(rules)


def parse_profile(data: Any, source: str) -> Profile:
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: a profile is a mapping with 'fhir' and 'hl7' rule lists")
    unknown = set(data) - {"name", "fhir", "hl7"}
    if unknown:
        raise ProfileError(f"{source}: unknown keys {sorted(unknown)}")
    return Profile(
        str(data.get("name", Path(source).stem)),
        parse_rules(data.get("fhir"), "fhir", source),
        parse_rules(data.get("hl7"), "hl7", source),
    )


def load_profile(path: str | Path | None = None) -> Profile:
    """The profile in ``path`` (YAML), or the built-in default profile."""
    if path is None:
        return default_profile()
    return _load(str(path))


@lru_cache(maxsize=1)
def default_profile() -> Profile:
    return _load(str(DEFAULT_PROFILE))


def _load(path: str) -> Profile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: invalid YAML ({type(exc).__name__})") from None
    return parse_profile(data, path)
