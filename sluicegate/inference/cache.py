"""Response cache for cleared de-identified prompts, sealed at rest.

Only requests that :func:`~sluicegate.inference.policy.is_cleared` accepts and
that are labelled de-identified are ever looked up or stored: PHI/PII prompts
never enter the cache. The key is a SHA-256 over backend, model, parameters and
the de-identified inputs (never the text itself); the value is the generation
sealed with AES-256-GCM, bound to its key as associated data so an entry cannot
be moved under another key. Entries live in process memory, bounded by count
(least recently used evicted first) and by age.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from sluicegate.core.crypto import CryptoError, Sealer
from sluicegate.core.interfaces import Generation, GenerationRequest, Sensitivity, Zone
from sluicegate.inference.policy import is_cleared


def cacheable(request: GenerationRequest, cleared: bool | None = None) -> bool:
    """De-identified work whose clearance covers its inputs, and nothing else.

    ``cleared`` may be passed when the caller already checked the clearance.
    """
    if request.sensitivity != Sensitivity.DEIDENTIFIED:
        return False
    return is_cleared(request) if cleared is None else cleared


def cache_key(backend_id: str, model: str, request: GenerationRequest) -> str:
    """Hash of everything that decides the answer; the inputs are already de-identified."""
    material = {
        "backend": backend_id,
        "model": model,
        "params": {"task": request.task, "max_tokens": request.max_tokens},
        "inputs": request.inputs,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """A TTL + LRU map from :func:`cache_key` to a sealed :class:`Generation`."""

    def __init__(
        self,
        sealer: Sealer | Callable[[], Sealer],
        ttl_s: float = 3600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sealer_source = sealer
        self._sealer_made: Sealer | None = sealer if isinstance(sealer, Sealer) else None
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def _sealer(self) -> Sealer:
        if self._sealer_made is None:
            source = self._sealer_source
            self._sealer_made = source if isinstance(source, Sealer) else source()
        return self._sealer_made

    def __len__(self) -> int:
        return len(self._entries)

    def sealed_values(self) -> list[bytes]:
        """The stored blobs (for tests and diagnostics: they are ciphertext)."""
        return [blob for _, blob in self._entries.values()]

    def get(self, key: str) -> Generation | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry[0]:
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        try:
            data = json.loads(self._sealer.open(entry[1], key.encode()))
        except (CryptoError, ValueError):
            del self._entries[key]  # unreadable (e.g. key retired): just a miss
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        data["zone"] = Zone(data["zone"])
        return replace(Generation(**data), from_cache=True)

    def put(self, key: str, generation: Generation) -> None:
        record = dict(vars(generation))  # flat fields: no deep copy needed
        record["zone"] = generation.zone.value
        record["route_reason"] = ""
        record["from_cache"] = False
        blob = self._sealer.seal(json.dumps(record).encode(), key.encode())
        self._entries[key] = (self._clock() + self.ttl_s, blob)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
