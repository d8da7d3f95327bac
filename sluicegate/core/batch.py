"""Batch step: run several queued jobs at once, so the model server batches them.

Triton's dynamic batcher (and vLLM's continuous batching) can only group
requests that are in flight together. ``execute_many`` claims a set of jobs,
prepares each exactly as :func:`.pipeline.execute` would (classify, protect),
submits all their requests together through the router's ``generate_many``
(bounded concurrency; each backend's own limit still caps the cloud), then
completes and ends each job on its own: one job's failure never touches the
others, and each attempt is audited as if it had run alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import structlog

from sluicegate.core import protect
from sluicegate.core.interfaces import Generation
from sluicegate.core.pipeline import Claim, Work, claim, complete, finish, prepare
from sluicegate.core.runtime import Runtime

log = structlog.get_logger("sluicegate.batch")


def execute_many(runtime: Runtime, job_ids: Sequence[str]) -> list[str]:
    """Run one delivery of each job; returns what happened to each, in order."""
    outcomes = ["skipped"] * len(job_ids)  # a job not claimable here is someone else's
    staged: list[tuple[int, Claim, protect.Prepared]] = []
    for n, job_id in enumerate(job_ids):
        claimed = claim(runtime, job_id)
        if claimed is None:
            continue
        try:
            staged.append((n, claimed, prepare(runtime, claimed)))
        except Exception as exc:  # ended on its own, like a single job would be
            outcomes[n] = finish(runtime, claimed, _raiser(exc))
    answers = _generate_all(runtime, [prepared for _, _, prepared in staged])
    for (n, claimed, prepared), answer in zip(staged, answers, strict=True):
        if isinstance(answer, Exception):
            outcomes[n] = finish(runtime, claimed, _raiser(answer))
        else:
            outcomes[n] = finish(runtime, claimed, _completer(runtime, claimed, prepared, answer))
    log.info("batch.done", jobs=len(job_ids), generated=len(staged))
    return outcomes


def _generate_all(
    runtime: Runtime, prepared: Sequence[protect.Prepared]
) -> list[Generation | Exception]:
    if not prepared:
        return []
    router = runtime.router()
    requests = [p.request for p in prepared]
    many = getattr(router, "generate_many", None)
    if many is not None:
        answers: list[Generation | Exception] = runtime.run(many(requests))
        return answers
    out: list[Generation | Exception] = []
    for request in requests:  # a router without batching: one after another
        try:
            out.append(runtime.run(router.generate(request)))
        except Exception as exc:
            out.append(exc)
    return out


def _raiser(exc: Exception) -> Work:
    def work() -> NoReturn:
        raise exc

    return work


def _completer(
    runtime: Runtime, claimed: Claim, prepared: protect.Prepared, answer: Generation
) -> Work:
    return lambda: complete(runtime, claimed, prepared, answer)
