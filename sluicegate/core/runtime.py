"""Everything a process needs at run time, built once from Settings.

The API process, each worker process and the CLI build one ``Runtime``:
engine, sealer, the adapters and the inference router named in config. Core
code receives it; it never reaches for globals of its own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from celery import Celery
from sqlalchemy import Engine

from sluicegate.core import db
from sluicegate.core.config import Settings
from sluicegate.core.crypto import Sealer, sealer_from_settings
from sluicegate.core.interfaces import Adapter, Router
from sluicegate.core.registry import load_object

if TYPE_CHECKING:
    from sluicegate.core.ingest import GroupCommitter
    from sluicegate.core.privacy.engine import PrivacyEngine

T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sealer: Sealer
    adapters: dict[str, Adapter]
    _router: Router | None = None
    _privacy: PrivacyEngine | None = field(default=None, repr=False)
    _committer: GroupCommitter | None = field(default=None, repr=False)
    _celery: Celery | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def router(self) -> Router:
        if self._router is None:
            factory = load_object(self.settings.inference.router)
            self._router = factory(self.settings)
        return self._router

    def privacy(self) -> PrivacyEngine:
        """The privacy engine (de-identify, guard, re-identify) built from config."""
        if self._privacy is None:
            from sluicegate.core.privacy.engine import PrivacyEngine

            self._privacy = PrivacyEngine.from_settings(self.settings)
        return self._privacy

    def committer(self) -> GroupCommitter:
        """Durable accept shared by concurrent senders (one transaction per group)."""
        if self._committer is None:
            from sluicegate.core.ingest import GroupCommitter

            cfg = self.settings.pipeline
            self._committer = GroupCommitter(
                self.engine, self.sealer, max_attempts=cfg.max_attempts, lease_s=cfg.lease_s
            )
        return self._committer

    def celery(self) -> Celery:
        """The Celery app (publisher side) for this runtime's broker."""
        if self._celery is None:
            from sluicegate.core.queue import make_celery

            self._celery = make_celery(self.settings)
        return self._celery

    def adapter(self, name: str) -> Adapter:
        try:
            return self.adapters[name]
        except KeyError:
            raise LookupError(f"adapter {name!r} is not enabled in config") from None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this runtime's own loop (sync callers: Celery tasks)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        """Release everything (sync callers: CLI, tests, worker shutdown)."""
        if self._router is not None:
            self.run(self._router.aclose())
            self._router = None
        if self._loop is not None:
            self._loop.close()
        self._release()

    async def aclose(self) -> None:
        """Release everything from inside a running loop (the API's lifespan)."""
        if self._router is not None:
            await self._router.aclose()
            self._router = None
        self._release()

    def _release(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None
        if self._celery is not None:
            self._celery.close()
            self._celery = None
        self.engine.dispose()


def load_adapters(settings: Settings) -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    for name, cfg in settings.adapters.items():
        if cfg.enabled:
            factory = load_object(cfg.factory)
            adapters[name] = factory(cfg.options)
    return adapters


def build_runtime(settings: Settings) -> Runtime:
    settings.home_path.mkdir(parents=True, exist_ok=True)
    if settings.auto_migrate:
        db.upgrade(settings.database_url)
    return Runtime(
        settings=settings,
        engine=db.make_engine(settings.database_url),
        sealer=sealer_from_settings(settings),
        adapters=load_adapters(settings),
    )


_worker: tuple[int, Runtime] | None = None


def worker_runtime() -> Runtime:
    """This process's runtime (rebuilt after fork: engines and loops don't survive it)."""
    global _worker
    if _worker is None or _worker[0] != os.getpid():
        from sluicegate.core.config_loader import settings_from_env

        _worker = (os.getpid(), build_runtime(settings_from_env()))
    return _worker[1]
