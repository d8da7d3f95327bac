"""Config loading: defaults, ${VAR} interpolation, and errors pinned to path and line."""

from __future__ import annotations

import pickle
import re
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from sluicegate.core.config import Settings
from sluicegate.core.config_loader import (
    ConfigError,
    ConfigProblem,
    load_settings,
    settings_from_env,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "config"
DATA_KEY = "q0mVt3o1zH4m8cY2lD9sX6wR5eJ7kN0pA3bC1dE4fG8="  # 32 bytes, base64


Write = Callable[[str], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write a dedented YAML file and return its path."""

    def _write(text: str) -> Path:
        path = tmp_path / "sluicegate.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env or {})
    return caught.value.errors


def by_path(problems: list[ConfigProblem]) -> dict[str, ConfigProblem]:
    return {p.path: p for p in problems}


# --------------------------------------------------------------------------- defaults


def test_no_file_gives_embedded_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SLUICEGATE_HOME", raising=False)
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    home = (tmp_path / ".sluicegate").resolve()
    assert settings.home_path == home
    assert settings.database_url == f"sqlite:///{home / 'sluicegate.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{home / 'broker.db'}"
    assert settings.is_sqlite and settings.auto_migrate
    assert list(settings.adapters) == ["fhir", "hl7v2", "finance"]
    assert list(settings.inference.backends) == ["local-triton"]
    assert settings.worker.embedded and settings.relay.embedded
    assert settings.inference.local_triton.enabled


def test_sluicegate_home_is_respected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLUICEGATE_HOME", str(tmp_path / "state"))
    settings = load_settings(None)
    assert settings.home_path == (tmp_path / "state").resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'state' / 'sluicegate.db'}"
    assert settings.broker_url.endswith("/state/broker.db")


def test_home_in_file_beats_env(
    monkeypatch: pytest.MonkeyPatch, write: Write, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLUICEGATE_HOME", str(tmp_path / "from-env"))
    settings = load_settings(write(f"home: {tmp_path / 'from-file'}\n"), {})
    assert settings.home_path == (tmp_path / "from-file").resolve()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_empty_file_gives_defaults(write: Write, text: str) -> None:
    assert load_settings(write(text), {}).model_dump() == Settings().model_dump()


def test_partial_file_keeps_other_defaults(write: Write) -> None:
    settings = load_settings(write("api:\n  port: 9000\n"), {})
    assert settings.api.port == 9000
    assert settings.api.host == "127.0.0.1"
    assert settings.pipeline.lease_s == 300.0


def test_accepts_str_path(write: Write) -> None:
    assert load_settings(str(write("api: {port: 1234}\n")), {}).api.port == 1234


# --------------------------------------------------------------------------- settings_from_env


def test_settings_from_env_uses_sluicegate_config(
    monkeypatch: pytest.MonkeyPatch, write: Write
) -> None:
    path = write("api:\n  port: ${PORT:-7000}\n")
    monkeypatch.setenv("SLUICEGATE_CONFIG", str(path))
    monkeypatch.delenv("PORT", raising=False)
    assert settings_from_env().api.port == 7000
    monkeypatch.setenv("PORT", "7001")
    assert settings_from_env().api.port == 7001


@pytest.mark.parametrize("value", [None, ""])
def test_settings_from_env_without_file_gives_defaults(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("SLUICEGATE_CONFIG", raising=False)
    else:
        monkeypatch.setenv("SLUICEGATE_CONFIG", value)
    assert settings_from_env().model_dump() == Settings().model_dump()


def test_settings_from_env_accepts_explicit_mapping(write: Write) -> None:
    path = write("api:\n  port: ${PORT}\n")
    assert settings_from_env({"SLUICEGATE_CONFIG": str(path), "PORT": "6000"}).api.port == 6000


def test_settings_from_env_reports_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLUICEGATE_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="not found"):
        settings_from_env()


# --------------------------------------------------------------------------- interpolation


def test_interpolation_plain_default_escape_and_multiple(write: Write) -> None:
    path = write(
        """
        database:
          url: postgresql+psycopg://${DB_USER}:${DB_PASS}@${DB_HOST:-db.internal}:${DB_PORT:-5432}/sg
        broker:
          url: ${BROKER_URL:-redis://localhost:6379/0}
        api:
          port: ${PORT}
        adapters:
          fhir:
            factory: sluicegate.adapters.fhir:FhirAdapter
            options:
              literal: "$${NOT_A_VAR} and $${ALSO:-not}"
              dollars: "costs $5, $$5 and ${EMPTY:-fallback}"
              list: ["${DB_USER}", "${MISSING:-x}"]
        """
    )
    env = {"DB_USER": "svc", "DB_PASS": "p@ss", "PORT": "9090", "EMPTY": ""}
    settings = load_settings(path, env)
    assert settings.database.url == "postgresql+psycopg://svc:p@ss@db.internal:5432/sg"
    assert settings.broker.url == "redis://localhost:6379/0"
    assert settings.api.port == 9090  # substituted text is then validated as int
    options = settings.adapters["fhir"].options
    assert options["literal"] == "${NOT_A_VAR} and ${ALSO:-not}"
    assert options["dollars"] == "costs $5, $$5 and fallback"
    assert options["list"] == ["svc", "x"]


def test_default_may_be_empty_and_set_empty_var_without_default_is_empty(write: Write) -> None:
    path = write('api:\n  host: "${HOST:-}"\nlogging:\n  level: INFO${SUFFIX}\n')
    settings = load_settings(path, {"SUFFIX": ""})
    assert settings.api.host == ""
    assert settings.logging.level == "INFO"


def test_substituted_values_are_not_rescanned(write: Write) -> None:
    path = write("database:\n  url: ${URL}\n")
    assert load_settings(path, {"URL": "x${OTHER}"}).database.url == "x${OTHER}"


def test_keys_are_not_interpolated(write: Write) -> None:
    path = write("encryption:\n  keys:\n    ${KID}: abc\n")
    assert load_settings(path, {"KID": "k1"}).encryption.keys == {"${KID}": "abc"}


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch, write: Write) -> None:
    monkeypatch.setenv("SG_TEST_PORT", "4321")
    assert load_settings(write("api:\n  port: ${SG_TEST_PORT}\n")).api.port == 4321


def test_missing_variables_are_all_reported_with_lines(write: Write) -> None:
    path = write(
        """
        database:
          url: ${DATABASE_URL}
        api:
          port: ${PORT}
          host: ${HOST}-${ALSO_MISSING:-ok}
        """
    )
    problems = by_path(errors_of(path))
    assert set(problems) == {"database.url", "api.port", "api.host"}
    assert problems["database.url"].line == 2
    assert "DATABASE_URL" in problems["database.url"].message
    # no extra "not an integer" complaint about the unsubstituted ${PORT}
    assert problems["api.port"].line == 4
    assert "PORT" in problems["api.port"].message
    assert problems["api.host"].line == 5
    assert "HOST" in problems["api.host"].message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("${1BAD}", "malformed"), ("${}", "malformed"), ("x ${OPEN", "unterminated")],
)
def test_malformed_references(write: Write, value: str, fragment: str) -> None:
    (problem,) = errors_of(write(f'api:\n  host: "{value}"\n'))
    assert problem.path == "api.host" and problem.line == 2
    assert fragment in problem.message


# --------------------------------------------------------------------------- validation errors


def test_type_error_has_dotted_path_and_line(write: Write) -> None:
    path = write(
        """
        inference:
          backends:
            local-triton:
              url: http://127.0.0.1:8000
              timeout_s: soon
        """
    )
    (problem,) = errors_of(path)
    assert problem.path == "inference.backends.local-triton.timeout_s"
    assert problem.line == 5
    assert "valid number" in problem.message


def test_unknown_key_suggests_the_right_one(write: Write) -> None:
    path = write(
        """
        api:
          port: 8080
          hots: 0.0.0.0
        """
    )
    (problem,) = errors_of(path)
    assert (problem.path, problem.line) == ("api.hots", 3)
    assert "unknown key" in problem.message
    assert "'host'" in problem.message


def test_unknown_key_with_missing_variable_reports_both(write: Write) -> None:
    problems = errors_of(write("api:\n  hots: ${NOPE}\n"))
    assert [p.path for p in problems] == ["api.hots", "api.hots"]
    assert {p.message.split(";")[0] for p in problems} == {
        "environment variable NOPE is not set and has no default",
        "unknown key",
    }


def test_unknown_top_level_section(write: Write) -> None:
    (problem,) = errors_of(write("api: {}\ndatabse:\n  url: sqlite://\n"))
    assert (problem.path, problem.line) == ("databse", 2)
    assert "did you mean 'database'" in problem.message


def test_unknown_key_inside_named_entry(write: Write) -> None:
    path = write(
        """
        adapters:
          fhir:
            factory: sluicegate.adapters.fhir:FhirAdapter
            tennant: acme
        """
    )
    (problem,) = errors_of(path)
    assert (problem.path, problem.line) == ("adapters.fhir.tennant", 4)
    assert "'tenant'" in problem.message


def test_missing_required_key_points_at_parent(write: Write) -> None:
    path = write(
        """
        adapters:
          fhir:
            factory: sluicegate.adapters.fhir:FhirAdapter
          hl7:
            enabled: true
        """
    )
    (problem,) = errors_of(path)
    assert problem.path == "adapters.hl7.factory"
    assert problem.line == 4
    assert "required" in problem.message


def test_list_where_a_mapping_is_expected(write: Write) -> None:
    path = write(
        """
        inference:
          backends:
            - url: http://a
        logging:
          level: [INFO]
        """
    )
    problems = by_path(errors_of(path))
    assert problems["inference.backends"].line == 2
    assert "dictionary" in problems["inference.backends"].message
    assert problems["logging.level"].line == 5


def test_list_items_render_as_indexes(write: Write) -> None:
    path = write(
        """
        adapters:
          fhir:
            factory: sluicegate.adapters.fhir:FhirAdapter
            options:
              hosts:
                - a.example
                - ${SECOND_HOST}
              routes:
                - {path: /x, path: /y}
        """
    )
    problems = errors_of(path)
    assert [(p.path, p.line) for p in problems] == [
        ("adapters.fhir.options.hosts[1]", 7),
        ("adapters.fhir.options.routes[0].path", 9),
    ]


def test_invalid_dict_key_is_reported(write: Write) -> None:
    path = write(
        """
        encryption:
          keys:
            k1: abc
            7: def
        """
    )
    (problem,) = errors_of(path)
    assert (problem.path, problem.line) == ("encryption.keys.7", 4)
    assert "invalid key" in problem.message


def test_several_errors_reported_at_once_sorted_by_line(write: Write) -> None:
    path = write(
        """
        api:
          port: 70000
        worker:
          concurrency: 0
          embedded: maybe
        relay:
          batch_size: many
        inference:
          backends:
            gpu:
              zone: moon
              protocol: carrier-pigeon
        logging:
          level: LOUD
        encryption:
          keys:
            k1: ${KEY}
        """
    )
    problems = errors_of(path)
    assert [(p.path, p.line) for p in problems] == [
        ("api.port", 2),
        ("worker.concurrency", 4),
        ("worker.embedded", 5),
        ("relay.batch_size", 7),
        ("inference.backends.gpu.zone", 11),
        ("inference.backends.gpu.protocol", 12),
        ("logging.level", 14),
        ("encryption.keys.k1", 17),
    ]


def test_duplicate_keys_are_errors(write: Write) -> None:
    path = write(
        """
        api:
          port: 8080
          host: 127.0.0.1
          port: 9090
        """
    )
    (problem,) = errors_of(path)
    assert (problem.path, problem.line) == ("api.port", 4)
    assert "line 2" in problem.message


def test_empty_section_explains_itself(write: Write) -> None:
    path = write(
        """
        database:
          # url: sqlite:///x.db
        api:
          port: 8080
        """
    )
    (problem,) = errors_of(path)
    assert (problem.path, problem.line) == ("database", 1)
    assert "delete the key" in problem.message


def test_merge_keys_work_and_keep_lines(write: Write) -> None:
    path = write(
        """
        inference:
          backends:
            a: &common
              timeout_s: 30
              max_tokens: 100
            b:
              <<: *common
              max_tokens: 0
        """
    )
    (problem,) = errors_of(path)
    assert (problem.path, problem.line) == ("inference.backends.b.max_tokens", 8)


def test_lease_must_exceed_backend_timeouts(write: Write) -> None:
    path = write(
        """
        pipeline:
          max_attempts: 3
          lease_s: 100
        inference:
          backends:
            gpu:
              timeout_s: 120
        """
    )
    (problem,) = errors_of(path)
    assert problem.path == "pipeline.lease_s"
    assert problem.line == 3
    assert "must exceed" in problem.message


def test_lease_error_without_pipeline_section_points_at_file_start(write: Write) -> None:
    path = write("api: {}\ninference:\n  backends:\n    gpu: {timeout_s: 900}\n")
    (problem,) = errors_of(path)
    assert (problem.path, problem.line) == ("pipeline.lease_s", 1)


# --------------------------------------------------------------------------- file-level errors


def test_yaml_syntax_error_has_line(write: Write) -> None:
    path = write(
        """
        api:
          port: 8080
         host: 127.0.0.1
        """
    )
    (problem,) = errors_of(path)
    assert problem.line == 3
    assert problem.path == ""
    assert problem.message.startswith("invalid YAML")


def test_yaml_unclosed_flow_mentions_where_it_opened(write: Write) -> None:
    (problem,) = errors_of(write("api: {port: 1\nlogging: {}\n"))
    assert "line 1" in problem.message


def test_unsafe_tags_are_refused(write: Write) -> None:
    (problem,) = errors_of(write("api:\n  host: !!python/object/apply:os.getcwd []\n"))
    assert problem.line == 2 and "invalid YAML" in problem.message


def test_unhashable_key_is_an_error_not_a_crash(write: Write) -> None:
    (problem,) = errors_of(write("api: {}\n? [a, b]\n: 1\n"))
    assert problem.line == 2 and "unhashable key" in problem.message


def test_recursive_alias_is_an_error_not_a_crash(write: Write) -> None:
    (problem,) = errors_of(write("adapters: &a\n  x: *a\n"))
    assert "recursive" in problem.message


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- api\n- worker\n", "list"), ("just text\n", "string"), ("42\n", "integer")],
)
def test_top_level_must_be_a_mapping(write: Write, text: str, kind: str) -> None:
    (problem,) = errors_of(write(text))
    assert problem.line == 1
    assert "top level must be a mapping" in problem.message
    assert kind in problem.message


def test_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing)
    assert str(caught.value) == f"{missing}: config file not found"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load_settings(tmp_path)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"api:\n  host: \xff\xfe\n")
    (problem,) = errors_of(path)
    assert problem.line == 2 and "UTF-8" in problem.message


# --------------------------------------------------------------------------- secrecy and formatting


def test_secret_values_never_appear_in_messages(write: Write) -> None:
    secret = "hunter2-SUPER-SECRET-value"
    path = write(
        f"""
        api:
          port: {secret}
          host: ${{HOST_SECRET}}
        worker:
          concurrency: ${{CONC}}
        inference:
          backends:
            gpu:
              zone: {secret}
        encryption:
          keys:
            k1: ${{MISSING_KEY}}
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {"CONC": secret, "HOST_SECRET": secret})
    text = str(caught.value)
    assert len(caught.value.errors) == 4
    assert secret not in text
    assert "got string" in text  # the type is given instead
    assert not any(secret in repr(p) for p in caught.value.errors)


def test_yaml_error_does_not_quote_the_source(write: Write) -> None:
    secret = "s3cr3t-password-value"
    path = write(f'database:\n  url: "postgres://u:{secret}@h/db\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert secret not in str(caught.value)


def test_str_formats_file_line_path_message(write: Write) -> None:
    path = write("api:\n  port: x\n  bogus: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:2: api.port: Input should be a valid integer")
    assert lines[1].startswith(f"{path}:3: api.bogus: unknown key")
    for line in lines:
        assert re.match(r"^.+:\d+: [\w.\-\[\]]+: .+$", line)


def test_str_without_line_or_path() -> None:
    error = ConfigError(
        [ConfigProblem("", None, "config file not found"), ConfigProblem("", 3, "bad")], "x.yaml"
    )
    assert str(error) == "x.yaml: config file not found\nx.yaml:3: bad"


def test_problem_is_frozen() -> None:
    problem = ConfigProblem("api.port", 1, "bad")
    with pytest.raises(AttributeError):
        problem.line = 2  # type: ignore[misc]


def test_config_error_survives_pickling(write: Write) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write("api: {port: x}\n"), {})
    clone = pickle.loads(pickle.dumps(caught.value))
    assert clone.errors == caught.value.errors
    assert str(clone) == str(caught.value)


# --------------------------------------------------------------------------- samples


def test_embedded_sample_is_exactly_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICEGATE_HOME", raising=False)
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)  # it adds a default cloud backend
    settings = load_settings(SAMPLES / "embedded.yaml", {})
    assert settings.model_dump() == Settings().model_dump()


def test_scale_out_sample_loads() -> None:
    settings = load_settings(SAMPLES / "scale-out.yaml", {"SLUICEGATE_DATA_KEY": DATA_KEY})
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    assert not settings.is_sqlite and not settings.auto_migrate
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.worker.embedded is False
    assert settings.relay.embedded is True
    assert settings.inference.local_triton.enabled is False
    (backend,) = settings.inference.backends.values()
    assert backend.url == "http://triton:8000"
    assert backend.model == "llama3-8b-instruct"
    assert settings.pipeline.lease_s > backend.timeout_s
    assert settings.encryption.keys == {settings.encryption.active_key_id: DATA_KEY}
    assert settings.logging.format == "json"


def test_scale_out_sample_takes_urls_from_env() -> None:
    env = {
        "SLUICEGATE_DATA_KEY": DATA_KEY,
        "DATABASE_URL": "postgresql+psycopg://sg:pw@db:5432/sg",
        "BROKER_URL": "redis://cache:6379/1",
        "TRITON_URL": "http://gpu-node:8000",
    }
    settings = load_settings(SAMPLES / "scale-out.yaml", env)
    assert settings.database_url == env["DATABASE_URL"]
    assert settings.broker_url == env["BROKER_URL"]
    assert settings.inference.backends["gpu-triton"].url == env["TRITON_URL"]


def test_scale_out_sample_requires_data_key() -> None:
    (problem,) = errors_of(SAMPLES / "scale-out.yaml", {})
    assert problem.path.startswith("encryption.keys.")
    assert "SLUICEGATE_DATA_KEY" in problem.message


# --------------------------------------------------------------------------- docs stay in sync


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def schema_paths(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[str]:
    """Every key of the schema as a dotted path; named entries as ``<name>``."""
    for name, field in model.model_fields.items():
        annotation = _unwrap_optional(field.annotation)
        path = f"{prefix}{name}"
        if _is_model(annotation):
            yield from schema_paths(annotation, f"{path}.")
        elif typing.get_origin(annotation) is dict and _is_model(typing.get_args(annotation)[1]):
            yield path
            yield from schema_paths(typing.get_args(annotation)[1], f"{path}.<name>.")
        else:
            yield path


def documented_paths() -> set[str]:
    """First-column keys of the tables under the Reference heading."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    text = text.split("\n## Reference\n", 1)[1]
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))


def test_docs_reference_lists_exactly_the_schema_keys() -> None:
    schema = set(schema_paths())
    documented = documented_paths()
    assert not schema - documented, (
        f"keys missing from docs/configuration.md: {schema - documented}"
    )
    assert not documented - schema, f"docs list keys the schema lacks: {documented - schema}"


def test_every_schema_path_appears_in_docs() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [p for p in schema_paths() if f"`{p}`" not in text]
    assert not missing
