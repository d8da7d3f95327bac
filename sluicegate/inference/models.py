"""Model version rollback for a Triton model repository (``sluicegate models``).

Production configs keep the last three versions loaded
(``version_policy: { latest { num_versions: 3 } }``), so the newest serves and
the two before it stay warm. Rolling back pins ``specific`` versions in the
model's ``config.pbtxt`` (by default the newest one below the version now
serving) and asks Triton's repository API to load the model again, which
re-reads the config; ``--restore`` puts the latest-3 policy back. The config is
edited as text, so its comments survive, and the result is checked with
Triton's own protobuf schema before it is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
import typer
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

LATEST_3 = "version_policy: { latest { num_versions: 3 } }"
_POLICY = re.compile(r"^[ \t]*version_policy\s*:?\s*\{", re.MULTILINE)


class RollbackError(Exception):
    """The repository, model or requested version does not allow this rollback."""


def parse_config(text: str) -> model_config_pb2.ModelConfig:
    """Parse ``config.pbtxt`` text with Triton's schema (raises on any error)."""
    config = model_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    return config


def versions(model_dir: Path) -> list[int]:
    """The numeric version directories present, ascending."""
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def served_versions(config: model_config_pb2.ModelConfig, present: list[int]) -> list[int]:
    """Which of ``present`` the config's version policy makes Triton load."""
    policy = config.version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return present
    if kind == "specific":
        return sorted(v for v in policy.specific.versions if v in present)
    count = policy.latest.num_versions if kind == "latest" else 1
    return present[-count:]


def replace_version_policy(text: str, policy: str) -> str:
    """``text`` with its top-level ``version_policy`` block replaced (or appended)."""
    match = _POLICY.search(text)
    if match is None:
        return text.rstrip("\n") + f"\n\n{policy}\n"
    depth, end = 0, match.end() - 1
    for end in range(match.end() - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    else:
        raise RollbackError("unbalanced braces in version_policy")
    indent = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
    return text[: match.start()] + indent + policy + text[end + 1 :]


@dataclass(frozen=True)
class Rollback:
    model: str
    before: list[int]
    after: list[int]
    policy: str


def rollback(
    repository: Path, model: str, to: int | None = None, *, restore: bool = False
) -> Rollback:
    """Pin the model to an older version (or restore latest-3) in its config.pbtxt."""
    model_dir = repository / model
    config_path = model_dir / "config.pbtxt"
    if not config_path.is_file():
        raise RollbackError(f"no {model}/config.pbtxt in repository {repository}")
    text = config_path.read_text()
    present = versions(model_dir)
    before = served_versions(parse_config(text), present)
    if restore:
        policy = LATEST_3
    else:
        if to is None:
            older = [v for v in present if before and v < max(before)]
            if not older:
                raise RollbackError(f"{model}: no version older than {before} to roll back to")
            to = older[-1]
        if to not in present:
            raise RollbackError(f"{model}: version {to} is not in the repository ({present})")
        policy = f"version_policy: {{ specific {{ versions: [ {to} ] }} }}"
    new_text = replace_version_policy(text, policy)
    after = served_versions(parse_config(new_text), present)  # validates before writing
    tmp = config_path.with_suffix(".pbtxt.tmp")
    tmp.write_text(new_text)
    tmp.replace(config_path)
    return Rollback(model, before, after, policy)


def reload(triton_url: str, model: str, timeout_s: float = 120.0) -> dict[str, str]:
    """Ask Triton (explicit model-control mode) to load ``model`` again; version -> state."""
    base = triton_url.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout_s) as client:
        answer = client.post(f"/v2/repository/models/{model}/load")
        if answer.status_code != 200:
            detail = answer.json().get("error", answer.text) if answer.content else ""
            raise RollbackError(
                f"Triton at {base} refused to load {model!r} ({answer.status_code}: {detail}); "
                "the repository API needs --model-control-mode=explicit"
            )
        index = client.post("/v2/repository/index").json()
    return {e["version"]: e.get("state", "") for e in index if e.get("name") == model}


models_app = typer.Typer(help="Model versions in a Triton repository.", no_args_is_help=True)


@models_app.command("rollback")
def rollback_command(
    repository: Annotated[Path, typer.Option(help="Triton model repository directory.")],
    model: Annotated[str, typer.Option(help="Model name (its directory).")],
    to: Annotated[
        int | None, typer.Option(help="Version to serve (default: the one before).")
    ] = None,
    restore: Annotated[
        bool, typer.Option("--restore", help="Go back to serving the latest 3 versions.")
    ] = False,
    triton_url: Annotated[
        str | None, typer.Option(help="Triton HTTP URL to reload the model on.")
    ] = None,
) -> None:
    """Serve an older version of MODEL (or restore latest-3), then reload it in Triton."""
    try:
        done = rollback(repository, model, to, restore=restore)
        typer.echo(f"{model}: serving {done.before} -> {done.after} ({done.policy})")
        if triton_url:
            states = reload(triton_url, model)
            ready = sorted(int(v) for v, s in states.items() if s == "READY")
            typer.echo(f"Triton reloaded {model}: ready versions {ready}")
    except (RollbackError, httpx.HTTPError, text_format.ParseError) as exc:
        typer.echo(f"rollback failed: {exc}", err=True)
        raise typer.Exit(1) from None
