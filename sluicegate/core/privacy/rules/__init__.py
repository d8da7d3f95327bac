"""Structured de-identification by rule: FHIR element paths and HL7 v2 field positions.

Rules are data (``profiles/default.yaml``, documented in docs/privacy.md). The
same rules serve two purposes: *harvest* pulls every identifier value out of
the structured part of a message (so the free-text de-identifier and the guard
can hunt it in the narrative), and *apply* writes a de-identified copy.

``profile`` loads and validates rules, ``fhir`` and ``hl7`` apply them to each
format, ``common`` holds what both share.
"""

from sluicegate.core.privacy.rules.common import shift_date_text, vault_names
from sluicegate.core.privacy.rules.fhir import apply_fhir, harvest_fhir
from sluicegate.core.privacy.rules.hl7 import apply_hl7, harvest_hl7
from sluicegate.core.privacy.rules.profile import (
    DEFAULT_PROFILE,
    Profile,
    ProfileError,
    Rule,
    default_profile,
    load_profile,
    parse_profile,
    parse_rules,
)

__all__ = [
    "DEFAULT_PROFILE",
    "Profile",
    "ProfileError",
    "Rule",
    "apply_fhir",
    "apply_hl7",
    "default_profile",
    "harvest_fhir",
    "harvest_hl7",
    "load_profile",
    "parse_profile",
    "parse_rules",
    "shift_date_text",
    "vault_names",
]
