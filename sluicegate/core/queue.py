"""The Celery app: broker from config, late acknowledgement; one job or a batch per task.

The broker is only a doorbell: the database is the source of truth for every
job, so a message that is lost (an embedded broker's worker killed with
SIGKILL) or delivered twice (Redis visibility timeout, RabbitMQ redelivery)
costs nothing: the relay's sweeper re-publishes lost work and the task is
idempotent by job id.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from sluicegate.core.config import Settings

RUN_JOB = "sluicegate.run_job"
RUN_BATCH = "sluicegate.run_batch"
QUEUE = "sluicegate"


def make_celery(settings: Settings) -> Celery:
    """A Celery app for the configured broker, with the pipeline task registered.

    One app per configuration (not a module global), so a process that loads a
    second configuration never publishes through the first one's connection pool.
    """
    transport_options: dict[str, Any] = {"visibility_timeout": settings.broker.visibility_timeout_s}
    if settings.broker_url.startswith("sqla+"):
        # kombu hands these to create_engine for this transport; it takes none of ours.
        transport_options = {}
        settings.home_path.mkdir(parents=True, exist_ok=True)
    app = Celery("sluicegate", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        task_default_queue=QUEUE,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    app.task(name=RUN_JOB, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(run_job)
    app.task(name=RUN_BATCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(
        run_batch
    )
    return app


def declare_queue(settings: Settings, attempts: int = 5) -> None:
    """Create the embedded broker's tables and queue before the processes that use it start.

    kombu's SQLAlchemy transport creates its tables and queue row on first use,
    guarded by a lock within one process only: a worker and the API's relay
    starting at the same moment can both try, and the loser dies on "table
    already exists" or on the unique queue name. Losing that race here is
    harmless (the other process created what we wanted), so we look again.
    Other brokers declare queues atomically and need nothing here.
    """
    if not settings.broker_url.startswith("sqla+"):
        return
    from sqlalchemy.exc import IntegrityError, OperationalError

    app = make_celery(settings)
    for attempt in range(attempts):
        try:
            with app.connection_for_write() as connection:
                connection.default_channel.queue_declare(QUEUE)
            return
        except (IntegrityError, OperationalError):
            # Another process created the table or row first (or holds the
            # SQLite write lock); the retry finds them and declares nothing new.
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def publish(app: Celery, job_id: str, message_id: int) -> None:
    """Send one run-job message; raises if the broker cannot take it now."""
    app.send_task(RUN_JOB, args=[job_id], task_id=f"{job_id}.{message_id}", retry=False)


def publish_batch(app: Celery, job_ids: list[str], message_id: int) -> None:
    """Send one message for several jobs (``pipeline.batch_size``); raises like :func:`publish`."""
    app.send_task(
        RUN_BATCH, args=[job_ids], task_id=f"batch.{job_ids[0]}.{message_id}", retry=False
    )


def run_batch(job_ids: list[str]) -> list[str]:
    """Worker entry point: run several jobs together so the model server can batch them."""
    from sluicegate.core.batch import execute_many
    from sluicegate.core.runtime import worker_runtime

    return execute_many(worker_runtime(), job_ids)


def run_job(job_id: str) -> str:
    """Worker entry point: hand the job to the pipeline of this process."""
    from sluicegate.core.pipeline import execute
    from sluicegate.core.runtime import worker_runtime

    return execute(worker_runtime(), job_id)
