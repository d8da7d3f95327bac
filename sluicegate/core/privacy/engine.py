"""The privacy engine: what the pipeline calls before and after a cloud model call.

``deidentify`` replaces every identifier in a work item's prompt inputs with a
consistent surrogate and returns the vault that undoes it; ``guard`` is the
independent last check on what would leave; ``reidentify`` puts the originals
back into the model's answer, on-prem.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluicegate.core.config import PrivacyConfig, Settings
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.privacy import guard as _guard
from sluicegate.core.privacy.deidentify import KnownSweep, deidentify_text
from sluicegate.core.privacy.reidentify import reidentify_text
from sluicegate.core.privacy.rules import (
    Profile,
    ProfileError,
    apply_fhir,
    apply_hl7,
    harvest_fhir,
    harvest_hl7,
    load_profile,
    parse_rules,
    vault_names,
)
from sluicegate.core.privacy.surrogates import parse_date
from sluicegate.core.privacy.vault import Vault

__all__ = ["Deidentified", "PrivacyEngine", "ProfileError", "Reidentified"]


@dataclass(frozen=True)
class Deidentified:
    """De-identified prompt inputs (what the cloud may see) and the vault that reverses them."""

    inputs: dict[str, str]
    vault: Vault
    counts: dict[str, int]  # replacements by kind, for the audit event; never values


@dataclass(frozen=True)
class Reidentified:
    text: str
    restored: int  # surrogates put back
    unresolved: int  # surrogate-looking tags with no mapping (left as they are)


class PrivacyEngine:
    """De-identify, guard and re-identify work items under one ``privacy`` config."""

    def __init__(self, config: PrivacyConfig) -> None:
        self.config = config
        self._detector: Any = None
        self._profiles: dict[str, Profile] = {}
        self._compiled: OrderedDict[str, tuple[Any, KnownSweep]] = OrderedDict()
        self._lock = threading.Lock()
        self.profile_for("")  # a bad profile is a start-up error, not a per-job one
        for channel in config.channels:
            self.profile_for(channel)

    @classmethod
    def from_settings(cls, settings: Settings) -> PrivacyEngine:
        return cls(settings.privacy)

    # --- configuration ----------------------------------------------------------------

    def profile_for(self, channel: str) -> Profile:
        """The channel's rule profile: its own file or the global one, plus inline rules."""
        cached = self._profiles.get(channel)
        if cached is not None:
            return cached
        over = self.config.channels.get(channel)
        path = (over.profile if over else None) or self.config.profile
        profile = load_profile(path)
        if over is not None and (over.fhir or over.hl7):
            where = f"privacy.channels.{channel}"
            profile = profile.with_overrides(
                parse_rules(over.fhir, "fhir", where), parse_rules(over.hl7, "hl7", where)
            )
        self._profiles[channel] = profile
        return profile

    def mode_for(self, channel: str) -> str:
        over = self.config.channels.get(channel)
        return (over.surrogates if over else None) or self.config.surrogates

    def new_vault(
        self, channel: str, identifiers: Mapping[str, Sequence[str]] | None = None
    ) -> Vault:
        """An empty vault for one job on ``channel`` (random seed and date offset)."""
        dates = []
        for values in (identifiers or {}).values():
            for value in values:
                expr = parse_date(value[:10]) if isinstance(value, str) else None
                if expr is not None:
                    dates.append(expr.value)
        return Vault.new(self.mode_for(channel), self.config.date_shift_days, dates)

    @property
    def detector(self) -> Any:
        if self._detector is None:
            from sluicegate.core.privacy.detect import Detector

            self._detector = Detector(ner=self.config.ner)
        return self._detector

    # --- the three operations -----------------------------------------------------------

    def deidentify(self, item: WorkItem) -> Deidentified:
        """``item.prompt_inputs`` with every identifier replaced by its surrogate."""
        vault = self.new_vault(item.channel, item.identifiers)
        identifiers = item.identifiers
        # A realistic surrogate must never be another real identifier of this item.
        vault.avoid(v for values in identifiers.values() for v in values)
        vault_names(vault, identifiers)
        known, sweep = self._matchers(identifiers)
        inputs: dict[str, str] = {}
        counts: Counter[str] = Counter()
        for name, text in item.prompt_inputs.items():
            findings = self.detector.detect(text, known=known)
            inputs[name], found = deidentify_text(text, vault, findings, sweep)
            counts.update(found)
        return Deidentified(inputs, vault, dict(counts))

    def _matchers(self, identifiers: Mapping[str, Sequence[str]]) -> tuple[Any, KnownSweep]:
        """Compiled matchers for one set of identifiers; the items of one message share them."""
        from sluicegate.core.privacy.known import KnownIdentifiers

        key = json.dumps(identifiers, sort_keys=True, default=str)
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                return hit
        built = (KnownIdentifiers.from_identifiers(identifiers), KnownSweep(identifiers))
        with self._lock:
            self._compiled[key] = built
            while len(self._compiled) > 32:
                self._compiled.popitem(last=False)
        return built

    def guard(self, item: WorkItem, inputs: Mapping[str, str]) -> list[str]:
        """Finding kinds in ``inputs`` (e.g. ``["name", "ssn"]``); ``[]`` is a pass. No values."""
        return _guard.guard(item.identifiers, inputs)

    def reidentify(self, text: str, vault: Vault) -> Reidentified:
        restored_text, restored, unresolved = reidentify_text(text, vault)
        return Reidentified(restored_text, restored, unresolved)

    # --- structured copies ----------------------------------------------------------------

    def deidentify_fhir(
        self, resource: dict[str, Any], vault: Vault, channel: str = ""
    ) -> dict[str, Any]:
        """A de-identified copy of a FHIR resource or Bundle under the channel's profile."""
        profile = self.profile_for(channel)
        identifiers = harvest_fhir(resource, profile)
        return apply_fhir(resource, vault, profile, self._text_fn(vault, identifiers))

    def deidentify_hl7(self, er7: str, vault: Vault, channel: str = "") -> str:
        """A de-identified copy of an HL7 v2 message under the channel's profile."""
        profile = self.profile_for(channel)
        identifiers = harvest_hl7(er7, profile)
        return apply_hl7(er7, vault, profile, self._text_fn(vault, identifiers))

    def _text_fn(self, vault: Vault, identifiers: dict[str, list[str]]) -> Callable[[str], str]:
        """Free-text de-identification that also hunts the document's own identifiers."""
        from sluicegate.core.privacy.known import KnownIdentifiers

        vault_names(vault, identifiers)
        known = KnownIdentifiers.from_identifiers(identifiers)
        sweep = KnownSweep(identifiers)

        def run(text: str) -> str:
            return deidentify_text(text, vault, self.detector.detect(text, known=known), sweep)[0]

        return run
