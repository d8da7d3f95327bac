"""Finance adapter: bank ETL reports in, grounded financial summaries out.

HTTP lives in :mod:`sluicegate.adapters.finance.routes`; this class is the
protocol-free part the registry builds from config (``adapters.<name>``).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

from fastapi import APIRouter

from sluicegate.adapters.finance.bulk_pool import HelperPool
from sluicegate.adapters.finance.grounding import problems
from sluicegate.adapters.finance.options import FinanceOptions, parse_options
from sluicegate.adapters.finance.render import grounding_of, render_summary
from sluicegate.adapters.finance.workitem import complete
from sluicegate.core.interfaces import Generation, Rendered, WorkItem

__all__ = ["FinanceAdapter"]


class FinanceAdapter:
    """Satisfies :class:`sluicegate.core.interfaces.Adapter` for finance reports."""

    name = "finance"

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        self.options: FinanceOptions = parse_options(options)
        self.helpers = HelperPool(self.options.bulk.processes)
        weakref.finalize(self, self.helpers.close)

    def complete_item(self, item: WorkItem) -> WorkItem:
        """The prompt's facts text, derived in the worker from the stored report."""
        return complete(item, self.options.checks)

    def verify(self, item: WorkItem, generation: Generation) -> list[str]:
        """Ungrounded numbers in the narrative (empty when every figure is a fact)."""
        _, _, grounding = grounding_of(item, generation.text, self.options.checks)
        return problems(grounding, item.identifiers)

    def render(self, item: WorkItem, generation: Generation, job_id: str) -> Rendered:
        """JSON summary with facts, ratios, checks, narrative, grounding and Markdown."""
        return render_summary(item, generation, job_id, self.options.checks)

    def api_router(self, name: str, tenant: str) -> APIRouter:
        from sluicegate.adapters.finance.routes import build_router

        return build_router(self, name, tenant)
