"""The demo's cloud side: a local DeepSeek stand-in that shows what it received.

The stand-in is a real OpenAI-compatible server (llama.cpp serving the same
small model, see :mod:`sluicegate.inference.openai_server`). In front of it
sits a recording proxy on loopback: the gateway's cloud backend talks to the
proxy exactly as it would to ``api.deepseek.com``, and the proxy keeps a copy
of every chat request it forwards, so the demo can print, side by side, what
the hospital sent, what the cloud actually received on the wire, and what the
hospital got back.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from sluicegate.inference.openai_server import running_openai_server

CLOUD_BACKEND = "cloud-standin"


@dataclass
class CloudStandIn:
    """Where the gateway should send cloud work, and what arrived there."""

    base_url: str
    model: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def user_texts(self) -> list[str]:
        """The user turn of every chat request received, in order."""
        texts: list[str] = []
        for body in self.received:
            for message in body.get("messages", []):
                if message.get("role") == "user":
                    texts.append(str(message.get("content", "")))
        return texts


def _proxy_handler(upstream: str, stand_in: CloudStandIn) -> type[BaseHTTPRequestHandler]:
    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with contextlib.suppress(ValueError):
                stand_in.received.append(json.loads(body))
            self._forward("POST", body)

        def do_GET(self) -> None:
            self._forward("GET", None)

        def _forward(self, method: str, body: bytes | None) -> None:
            headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
            try:
                reply = httpx.request(
                    method, upstream + self.path, content=body, headers=headers, timeout=300
                )
            except httpx.HTTPError:
                self.send_error(502)
                return
            self.send_response(reply.status_code)
            self.send_header("Content-Type", reply.headers.get("content-type", "text/plain"))
            self.send_header("Content-Length", str(len(reply.content)))
            self.end_headers()
            self.wfile.write(reply.content)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the demo prints what matters

    return Recorder


@contextlib.contextmanager
def cloud_stand_in(log_dir: Path) -> Iterator[CloudStandIn]:
    """Start the stand-in server and its recording proxy; stop both afterwards."""
    log_dir.mkdir(parents=True, exist_ok=True)
    # One thread: on a busy 2-core box llama.cpp spin-waits badly with two.
    with running_openai_server(threads=1, log_path=log_dir / "cloud-standin.log") as server:
        upstream = f"http://{server.host}:{server.port}"
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        stand_in = CloudStandIn(
            base_url=f"http://127.0.0.1:{proxy.server_address[1]}/v1", model=server.model
        )
        proxy.RequestHandlerClass = _proxy_handler(upstream, stand_in)
        thread = threading.Thread(target=proxy.serve_forever, name="cloud-proxy", daemon=True)
        thread.start()
        try:
            yield stand_in
        finally:
            proxy.shutdown()
            proxy.server_close()


def with_cloud(config: dict[str, Any], stand_in: CloudStandIn) -> dict[str, Any]:
    """Demo config: radiology drafts may go to the stand-in once de-identified.

    The finance and HL7 channels are marked ``cloud: never`` (as many banks
    and hospitals will), so the demo also shows sensitive work staying on-prem.
    """
    inference = config["inference"]
    inference["backends"][CLOUD_BACKEND] = {
        "factory": "sluicegate.inference.deepseek:DeepSeekBackend",
        "zone": "cloud",
        "url": stand_in.base_url,
        "model": stand_in.model,
        "api_key": "demo-local-stand-in",
        "chat_template": "none",
        "max_tokens": 160,
        "temperature": 0.0,
        "timeout_s": 120.0,
    }
    onprem = [k for k, b in inference["backends"].items() if b.get("zone") != "cloud"]
    inference["policy"] = {
        "rules": [
            {
                "task": "radiology_report",
                "phi": onprem,
                "pii": onprem,
                "deidentified": [CLOUD_BACKEND],
            }
        ],
        "channels": {"finance": {"cloud": "never"}, "hl7v2": {"cloud": "never"}},
    }
    return config


def wait_for_request(stand_in: CloudStandIn, count: int, deadline: float) -> None:
    while len(stand_in.received) < count and time.monotonic() < deadline:
        time.sleep(0.2)
