"""TLS server contexts: TLS 1.3 minimum by default, optional client certificates.

One function builds the context for every listener (the HTTP API here, the
HL7 MLLP listener in its adapter), so the policy is the same everywhere.
"""

from __future__ import annotations

import ssl
from typing import Any

import uvicorn

from sluicegate.core.config import TlsConfig

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def enabled(cfg: TlsConfig) -> bool:
    return cfg.certfile is not None


def server_context(cfg: TlsConfig) -> ssl.SSLContext:
    """A server context from config; with ``client_ca``, clients must present a certificate."""
    if cfg.certfile is None:
        raise ValueError("security.tls.certfile is not set")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[cfg.min_version]
    context.load_cert_chain(cfg.certfile, cfg.keyfile)
    if cfg.client_ca is not None:
        context.load_verify_locations(cafile=cfg.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def uvicorn_config(
    app: Any, cfg: TlsConfig, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """A uvicorn config serving ``app``, over TLS when ``cfg`` has a certificate.

    uvicorn's own SSL options cannot set a minimum version, so the context is
    ours: through ``ssl_context_factory`` where uvicorn has it, else by loading
    the config first and replacing its context (``Server`` keeps a loaded config).
    """
    if not enabled(cfg):
        return uvicorn.Config(app, host=host, port=port, **options)
    try:
        return uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_context_factory=lambda _config, _default: server_context(cfg),
            **options,
        )
    except TypeError:  # an older uvicorn
        config = uvicorn.Config(app, host=host, port=port, **options)
        config.load()
        config.ssl = server_context(cfg)
        return config
