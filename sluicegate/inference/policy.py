"""The routing policy: which backends a request may reach, and in which order.

Pure logic, no I/O, so every privacy invariant is checkable in isolation:

* PHI, PII and any unrecognised sensitivity never get a cloud backend, whatever
  the config says (a config that lists one is rejected at load).
* A cloud backend is a candidate only for a request whose
  :class:`~sluicegate.core.interfaces.Clearance` covers its exact inputs, and
  only on channels that allow the cloud.
* The zone of the first usable entry decides the zone of the whole attempt:
  fallback never crosses into another trust zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from sluicegate.core.config import PolicyConfig, RouteRule
from sluicegate.core.interfaces import GenerationRequest, Sensitivity, Zone

_SENSITIVE = frozenset({Sensitivity.PHI, Sensitivity.PII})
LEVELS = ("phi", "pii", "deidentified", "public")
_PLAN_CACHE_SIZE = 4096


class PolicyError(ValueError):
    """The policy config would break an invariant or names an unknown backend."""


def level_of(sensitivity: str) -> Sensitivity:
    """The policy level for a label; anything unrecognised is treated as PHI."""
    try:
        return Sensitivity(sensitivity)
    except ValueError:
        return Sensitivity.PHI


def is_sensitive(sensitivity: str) -> bool:
    """PHI/PII, or anything unrecognised: an unknown label is treated as sensitive."""
    return level_of(sensitivity) in _SENSITIVE


def is_cleared(request: GenerationRequest) -> bool:
    """De-identified or public work whose clearance vouches for these exact inputs."""
    if is_sensitive(request.sensitivity) or request.clearance is None:
        return False
    return request.clearance.covers(request.inputs)


@dataclass(frozen=True)
class Plan:
    """Backend ids to try in order (all one zone), and why (audited, no content)."""

    backend_ids: tuple[str, ...]
    zone: Zone | None
    reason: str


class Policy:
    """Routing policy over a fixed set of backends and their zones."""

    def __init__(self, zones: Mapping[str, Zone], config: PolicyConfig | None = None) -> None:
        self.zones = dict(zones)
        self.config = config or PolicyConfig()
        validate(self.config, self.zones)
        # Plans depend only on these four values and the fixed config: memoised.
        self._plans: dict[tuple[str, str, str, bool], Plan] = {}

    def _rule(self, task: str, channel: str) -> tuple[int, RouteRule] | None:
        for index, rule in enumerate(self.config.rules):
            if fnmatchcase(task, rule.task) and fnmatchcase(channel, rule.channel):
                return index, rule
        return None

    def cloud_allowed(self, channel: str) -> bool:
        """False when any channel policy matching ``channel`` says ``cloud: never``."""
        return not any(
            fnmatchcase(channel, pattern) and cp.cloud == "never"
            for pattern, cp in self.config.channels.items()
        )

    def _default(self, level: Sensitivity) -> list[str]:
        onprem = [i for i, z in self.zones.items() if z == Zone.ONPREM]
        if level in _SENSITIVE:
            return onprem
        return [i for i, z in self.zones.items() if z == Zone.CLOUD] + onprem

    def plan(self, request: GenerationRequest, cleared: bool | None = None) -> Plan:
        """The candidates for ``request``; cloud ones dropped unless it is cleared.

        ``cleared`` may be passed when the caller already checked the clearance.
        """
        if cleared is None:
            cleared = is_cleared(request)
        key = (request.task, request.channel, request.sensitivity, cleared)
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            found = self._plans[key] = self._plan(*key)
        return found

    def _plan(self, task: str, channel: str, sensitivity: str, cleared: bool) -> Plan:
        level = level_of(sensitivity)
        found = self._rule(task, channel)
        listed = getattr(found[1], level.value) if found else None
        source = f"rule {found[0]}" if found and listed is not None else "default policy"
        ids = list(listed) if listed is not None else self._default(level)
        notes = [f"{source} for {level.value}"]
        if sensitivity != level.value:
            notes.append("unknown sensitivity treated as phi")
        if any(self.zones[i] == Zone.CLOUD for i in ids):
            why = None
            if level in _SENSITIVE:
                why = "sensitive"
            elif not self.cloud_allowed(channel):
                why = "channel forbids cloud"
            elif not cleared:
                why = "no clearance for these inputs"
            if why:
                ids = [i for i in ids if self.zones[i] != Zone.CLOUD]
                notes.append(f"cloud excluded: {why}")
        if not ids:
            return Plan((), None, "; ".join(notes))
        zone = self.zones[ids[0]]
        same = tuple(i for i in ids if self.zones[i] == zone)
        if len(same) != len(ids):
            notes.append(f"other-zone entries dropped (fallback stays {zone.value})")
        return Plan(same, zone, "; ".join(notes))

    def cloud_eligible(self, task: str, channel: str) -> bool:
        """Whether cleared de-identified work of this task and channel goes to the cloud."""
        return self._plan(task, channel, Sensitivity.DEIDENTIFIED, True).zone == Zone.CLOUD


def validate(config: PolicyConfig, zones: Mapping[str, Zone]) -> None:
    """Reject unknown backend ids and any cloud backend listed for PHI or PII."""
    for index, rule in enumerate(config.rules):
        for level in LEVELS:
            for backend_id in getattr(rule, level) or []:
                zone = zones.get(backend_id)
                if zone is None:
                    raise PolicyError(
                        f"policy.rules[{index}].{level}: unknown backend {backend_id!r}"
                    )
                if level in ("phi", "pii") and zone == Zone.CLOUD:
                    raise PolicyError(
                        f"policy.rules[{index}].{level}: {backend_id!r} is a cloud backend; "
                        f"{level} work may only go to on-prem backends"
                    )
