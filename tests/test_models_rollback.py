"""Deploy artefacts parse with Triton's schema; rollback works on a real tritonserver.

The rollback test starts the ``tritonserver`` binary shipped in the
``nvidia-pytriton`` wheel in explicit model-control mode, with a three-version
Python-backend model that answers with its own version number, and drives
``sluicegate models rollback`` against it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2
from typer.testing import CliRunner

from sluicegate.cli import app
from sluicegate.inference.models import (
    RollbackError,
    parse_config,
    replace_version_policy,
    rollback,
)
from tests.conftest import REPO
from tests.triton_fixture import free_ports

DEPLOY = REPO / "deploy" / "triton"
NEW_MODELS = [
    "model_repository/deepseek-r1-distill-qwen-7b",
    "trtllm_repository/deepseek-r1-distill-trtllm",
    "trtllm_repository/preprocessing",
    "trtllm_repository/tensorrt_llm",
    "trtllm_repository/postprocessing",
    "onnx_repository/deepseek-r1-distill-onnx",
]


def load(path: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse(path.read_text(), config)
    return config


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("config.pbtxt")), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_every_deploy_config_parses_with_tritons_schema(path: Path) -> None:
    config = load(path)
    assert config.backend or config.platform
    for version_dir in path.parent.iterdir():
        for model_json in version_dir.glob("model.json"):
            assert json.loads(model_json.read_text())["model"].startswith("/weights/")


@pytest.mark.parametrize("model", NEW_MODELS)
def test_new_models_keep_the_last_three_versions(model: str) -> None:
    config = load(DEPLOY / model / "config.pbtxt")
    assert config.version_policy.WhichOneof("policy_choice") == "latest"
    assert config.version_policy.latest.num_versions == 3
    assert (DEPLOY / model / "1").is_dir()


def test_batching_is_enabled_where_triton_batches() -> None:
    for model in ("trtllm_repository/tensorrt_llm", "onnx_repository/deepseek-r1-distill-onnx"):
        config = load(DEPLOY / model / "config.pbtxt")
        assert config.max_batch_size > 0 and config.HasField("dynamic_batching")
    vllm = load(DEPLOY / "model_repository/deepseek-r1-distill-qwen-7b/config.pbtxt")
    assert vllm.backend == "vllm" and vllm.model_transaction_policy.decoupled


def test_ensemble_wiring_is_complete() -> None:
    """Every step input is an ensemble input or an earlier step's output, with matching names."""
    repo = DEPLOY / "trtllm_repository"
    ensemble = load(repo / "deepseek-r1-distill-trtllm" / "config.pbtxt")
    available = {t.name for t in ensemble.input}
    for step in ensemble.ensemble_scheduling.step:
        member = load(repo / step.model_name / "config.pbtxt")
        member_inputs = {t.name: t for t in member.input}
        member_outputs = {t.name for t in member.output}
        for key, value in step.input_map.items():
            assert key in member_inputs, (step.model_name, key)
            assert value in available, (step.model_name, value)
        required = {n for n, t in member_inputs.items() if not t.optional}
        assert required <= set(step.input_map), step.model_name
        for key, value in step.output_map.items():
            assert key in member_outputs, (step.model_name, key)
            available.add(value)
    assert {t.name for t in ensemble.output} <= available
    assert {t.name for t in ensemble.input} >= {"text_input", "max_tokens", "stream"}


# ------------------------------------------------------------------ rollback

ECHO_CONFIG = """\
# A test model whose versions answer with their own number.
backend: "python"
max_batch_size: 0

# keep three
version_policy: {
  latest { num_versions: 3 }
}
input [ { name: "x", data_type: TYPE_INT32, dims: [ 1 ] } ]
output [ { name: "version", data_type: TYPE_INT32, dims: [ 1 ] } ]
instance_group [ { count: 1, kind: KIND_CPU } ]
"""

ECHO_MODEL = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.version = int(args["model_version"])

    def execute(self, requests):
        out = pb_utils.Tensor("version", np.array([self.version], dtype=np.int32))
        return [pb_utils.InferenceResponse([out]) for _ in requests]
"""


def echo_repository(root: Path, count: int = 3) -> Path:
    repo = root / "models"
    (repo / "echo").mkdir(parents=True)
    (repo / "echo" / "config.pbtxt").write_text(ECHO_CONFIG)
    for version in range(1, count + 1):
        (repo / "echo" / str(version)).mkdir()
        (repo / "echo" / str(version) / "model.py").write_text(ECHO_MODEL)
    return repo


def test_rollback_edits_config_keeping_comments(tmp_path: Path) -> None:
    repo = echo_repository(tmp_path)
    config = repo / "echo" / "config.pbtxt"
    done = rollback(repo, "echo")
    assert (done.before, done.after) == ([1, 2, 3], [2])
    text = config.read_text()
    assert "# keep three" in text and "# A test model" in text
    assert parse_config(text).version_policy.specific.versions == [2]
    assert rollback(repo, "echo").after == [1]  # again: one further back
    with pytest.raises(RollbackError, match="no version older"):
        rollback(repo, "echo")
    with pytest.raises(RollbackError, match="version 7 is not in the repository"):
        rollback(repo, "echo", to=7)
    assert rollback(repo, "echo", restore=True).after == [1, 2, 3]
    with pytest.raises(RollbackError, match=r"no nope/config\.pbtxt"):
        rollback(repo, "nope")


def test_replace_version_policy_appends_when_absent() -> None:
    text = 'backend: "python"\n# version_policy: { all { } } is only a comment\n'
    out = replace_version_policy(text, "version_policy: { all { } }")
    assert out.endswith("version_policy: { all { } }\n") and "# version_policy" in out
    assert parse_config(out).version_policy.WhichOneof("policy_choice") == "all"


@contextlib.contextmanager
def tritonserver(repo: Path, work: Path) -> Iterator[str]:
    """The wheel's tritonserver in explicit mode, with the Python backend for this interpreter."""
    from pytriton.utils.distribution import get_libs_path, get_stub_path

    server_root = Path(sys.modules["pytriton"].__file__ or "").parent / "tritonserver"
    backends = work / "backends" / "python"
    backends.mkdir(parents=True)
    for item in (server_root / "backends" / "python").iterdir():
        if item.is_file():
            (backends / item.name).symlink_to(item)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    shutil.copy(get_stub_path(version), backends / "triton_python_backend_stub")
    env = os.environ.copy()
    libdirs = [str(get_libs_path()), sysconfig.get_config_var("LIBDIR") or ""]
    env["LD_LIBRARY_PATH"] = ":".join([*libdirs, env.get("LD_LIBRARY_PATH", "")])
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    http, grpc, metrics = free_ports(3)
    log = (work / "tritonserver.log").open("wb")
    proc = subprocess.Popen(
        [
            str(server_root / "bin" / "tritonserver"),
            f"--model-repository={repo}",
            f"--backend-directory={work / 'backends'}",
            "--model-control-mode=explicit",
            "--load-model=echo",
            f"--http-port={http}",
            f"--grpc-port={grpc}",
            f"--metrics-port={metrics}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (work / "tritonserver.log").read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v2/models/echo/ready", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "tritonserver did not get ready"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def served_version(url: str) -> int:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [0]}]}
    answer = httpx.post(f"{url}/v2/models/echo/infer", json=body, timeout=30)
    answer.raise_for_status()
    return int(answer.json()["outputs"][0]["data"][0])


def test_rollback_against_a_real_tritonserver(tmp_path: Path) -> None:
    repo = echo_repository(tmp_path)
    runner = CliRunner()
    with tritonserver(repo, tmp_path / "work") as url:
        assert served_version(url) == 3
        base = ["models", "rollback", "--repository", str(repo), "--model", "echo"]
        out = runner.invoke(app, [*base, "--triton-url", url])
        assert out.exit_code == 0, out.output
        assert "serving [1, 2, 3] -> [2]" in out.output and "ready versions [2]" in out.output
        assert served_version(url) == 2
        out = runner.invoke(app, [*base, "--to", "1", "--triton-url", url])
        assert out.exit_code == 0, out.output
        assert served_version(url) == 1
        out = runner.invoke(app, [*base, "--restore", "--triton-url", url])
        assert out.exit_code == 0, out.output
        assert "ready versions [1, 2, 3]" in out.output
        assert served_version(url) == 3
        # A model Triton cannot load is reported, not hidden.
        (repo / "broken" / "1").mkdir(parents=True)
        (repo / "broken" / "config.pbtxt").write_text('backend: "no_such_backend"\n')
        (repo / "broken" / "2").mkdir()
        out = runner.invoke(
            app,
            ["models", "rollback", "--repository", str(repo), "--model", "broken",
             "--triton-url", url],
        )  # fmt: skip
        assert out.exit_code == 1 and "refused to load 'broken'" in out.output
