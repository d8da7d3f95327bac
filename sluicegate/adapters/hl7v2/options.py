"""The adapter's options (``adapters.<name>.options``), validated by pydantic.

Errors carry the field path (``mllp.port``), and the config loader prefixes
the adapter's own path, so a typo is reported where it was made.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, model_validator

from sluicegate.core.interfaces import WriteBackPolicy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MllpOptions(_Strict):
    """The MLLP listener (`sluicegate mllp serve`, or started by `sluicegate serve`)."""

    enabled: bool = Field(default=True, description="`sluicegate serve` starts the listener.")
    host: str = "127.0.0.1"
    port: int = Field(default=2575, ge=0, le=65535)
    tls_cert: str | None = Field(default=None, description="PEM certificate: enables TLS.")
    tls_key: str | None = Field(default=None, description="PEM private key for tls_cert.")
    tls_client_ca: str | None = Field(
        default=None, description="CA bundle: when set, clients must present a certificate."
    )
    tls_min_version: Literal["1.2", "1.3"] = Field(
        default="1.3", description="Oldest TLS version accepted."
    )
    allow_from: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Source networks allowed to connect (CIDR); empty: any.",
    )
    client_cert_subjects: list[str] = Field(
        default_factory=list,
        description="With tls_client_ca: accepted certificate subject CNs; empty: any CA-signed.",
    )
    max_frame_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    idle_timeout_s: float = Field(default=300.0, gt=0)
    shutdown_grace_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=64, ge=1)

    @model_validator(mode="after")
    def _tls_pair(self) -> MllpOptions:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        return self


class WriteBackMllp(_Strict):
    """Where draft reports go as ORU^R01 over MLLP, and how persistently."""

    host: str
    port: int = Field(ge=1, le=65535)
    timeout_s: float = Field(default=10.0, gt=0)
    tls: bool = False
    tls_ca: str | None = None
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        description="Attempts before the ORU is dead-lettered. Default (null): retried until "
        "the receiver answers, at most backoff_max_s apart; an AE/AR answer ends it at once.",
    )
    backoff_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)

    def policy(self) -> WriteBackPolicy:
        return WriteBackPolicy(
            target=f"mllp://{self.host}:{self.port}",
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
            backoff_max_s=self.backoff_max_s,
        )


class Hl7v2Options(_Strict):
    """Everything about the HL7 v2 channel that a site may change."""

    mllp: MllpOptions = Field(default_factory=MllpOptions)
    application: str = Field(default="SLUICEGATE", description="Our MSH-3 in ACKs and ORUs.")
    facility: str = Field(default="SLUICEGATE", description="Our MSH-4 in ACKs and ORUs.")
    duplicate_window_s: float = Field(
        default=7 * 24 * 3600.0,
        ge=0,
        description="A message with the same sending facility and MSH-10 within this "
        "window is acknowledged AA again without a second job.",
    )
    hl7apy_check: Literal["off", "tolerant", "strict"] = Field(
        default="off",
        description="Also parse each message with hl7apy before the ACK (AE if it fails). "
        "Slow; runs in a process pool. 'strict' refuses most real-world messages.",
    )
    write_back: WriteBackMllp | None = None
