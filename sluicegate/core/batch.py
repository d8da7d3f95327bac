"""Batch step: run several queued jobs at once, so the model server batches them.

Triton's dynamic batcher (and vLLM's continuous batching) can only group
requests that are in flight together. ``execute_many`` claims a set of jobs
(one transaction), prepares each exactly as :func:`.pipeline.execute` would
(classify, protect), submits all their requests together through the router's
``generate_many`` (bounded concurrency; each backend's own limit still caps
the cloud), then completes each job on its own: a failure ends only its own
job, and each attempt is audited as if it had run alone. The successes are
stored together (one transaction, :func:`.claims.succeed_many`), which is
most of what a batch saves on a worker's CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import structlog

from sluicegate.core import protect
from sluicegate.core.claims import Claim, Success, succeed_many
from sluicegate.core.interfaces import Generation
from sluicegate.core.pipeline import Work, claim_many, complete, finish, prepare, run_steps
from sluicegate.core.runtime import Runtime

log = structlog.get_logger("sluicegate.batch")


def execute_many(runtime: Runtime, job_ids: Sequence[str]) -> list[str]:
    """Run one delivery of each job; returns what happened to each, in order."""
    outcomes: list[str] = []
    staged: list[tuple[int, Claim, protect.Prepared]] = []
    for n, claimed in enumerate(claim_many(runtime, job_ids)):
        outcomes.append(claimed if isinstance(claimed, str) else "running")
        if isinstance(claimed, str):
            continue  # not claimable here (someone else's), or already ended
        try:
            staged.append((n, claimed, prepare(runtime, claimed)))
        except Exception as exc:  # ended on its own, like a single job would be
            outcomes[n] = finish(runtime, claimed, _raiser(exc))
    answers = _generate_all(runtime, [prepared for _, _, prepared in staged])
    done: list[tuple[int, Success]] = []
    for (n, claimed, prepared), answer in zip(staged, answers, strict=True):
        if isinstance(answer, Exception):
            work = _raiser(answer)
        else:
            work = _completer(runtime, claimed, prepared, answer)
        ended = run_steps(runtime, claimed, work)
        if isinstance(ended, str):
            outcomes[n] = ended
        else:
            done.append((n, ended))
    # Every success of the batch in one transaction; each job still checked on its own.
    for (n, _), outcome in zip(done, succeed_many(runtime, [s for _, s in done]), strict=True):
        outcomes[n] = outcome
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
