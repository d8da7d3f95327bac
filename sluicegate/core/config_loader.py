"""Read the YAML config file into :class:`~sluicegate.core.config.Settings`.

The file is the one thing an integration engineer writes by hand, so every
mistake in it is reported at once, each pinned to a dotted path and a line:
fixing one error per restart is a miserable way to configure a gateway.

Steps: read the text, compose it with PyYAML's safe loader (the node tree gives
line numbers), replace ``${VAR}`` / ``${VAR:-default}`` in string values, then
validate with pydantic. Messages never repeat configured values, because those
values may be keys, passwords or URLs with credentials in them.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from sluicegate.core.config import Settings

__all__ = [
    "CONFIG_ENV_VAR",
    "ConfigError",
    "ConfigProblem",
    "load_settings",
    "settings_from_env",
]

CONFIG_ENV_VAR = "SLUICEGATE_CONFIG"
"""Environment variable naming the config file for processes started without a CLI flag."""

Key = Any
"""A mapping key as YAML constructed it (usually ``str``) or a list index (``int``)."""
PathTuple = tuple[Key, ...]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file.

    ``path`` is the dotted YAML path (``inference.backends.gpu.timeout_s``,
    ``adapters.fhir.options.hosts[0]``), or ``""`` when the problem is not tied
    to a key (unreadable file, YAML syntax). ``line`` is 1-based, ``None`` when
    unknown.
    """

    path: str
    line: int | None
    message: str


class ConfigError(Exception):
    """The config file cannot be used; ``errors`` lists every reason found."""

    def __init__(self, errors: Sequence[ConfigProblem], source: str | None = None) -> None:
        # Passing both to Exception keeps the error picklable (Celery ships exceptions).
        super().__init__(list(errors), source)
        self.errors: list[ConfigProblem] = list(errors)
        self.source = source

    def __str__(self) -> str:
        """One ``FILE:LINE: PATH: MESSAGE`` line per problem, like a compiler."""
        return "\n".join(self._format(p) for p in self.errors)

    def _format(self, problem: ConfigProblem) -> str:
        where = self.source or "<config>"
        if problem.line is not None:
            where += f":{problem.line}"
        if problem.path:
            where += f": {problem.path}"
        return f"{where}: {problem.message}"


# --------------------------------------------------------------------------- public API


def load_settings(path: str | Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Load and validate a config file; ``None`` means the embedded defaults.

    ``env`` supplies ``${VAR}`` values (default: ``os.environ``). Raises
    :class:`ConfigError` listing every problem found.
    """
    if path is None:
        return Settings()
    source = str(path)
    text = _read_text(Path(path), source)
    return _load_text(text, source, os.environ if env is None else env)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for processes without a command line (Celery workers, ASGI apps).

    Loads the file named by ``$SLUICEGATE_CONFIG`` when set and non-empty,
    else the embedded defaults.
    """
    environ = os.environ if env is None else env
    path = environ.get(CONFIG_ENV_VAR) or None
    return load_settings(path, environ)


# --------------------------------------------------------------------------- reading


def _read_text(path: Path, source: str) -> str:
    """The file's text, or a ConfigError that says plainly why it can't be read."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("", None, "config file not found")], source) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem("", None, "is a directory, not a file")], source) from None
    except OSError as exc:
        message = f"cannot read config file: {exc.strerror or type(exc).__name__}"
        raise ConfigError([ConfigProblem("", None, message)], source) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem("", line, "file is not valid UTF-8")], source) from None


def _load_text(text: str, source: str, env: Mapping[str, str]) -> Settings:
    lines, duplicates, data = _parse_yaml(text, source)
    if data is None:  # empty file, or only comments
        return Settings()
    if not isinstance(data, dict):
        message = (
            "top level must be a mapping of sections (database:, api:, ...), "
            f"got {_type_name(data)}"
        )
        raise ConfigError([ConfigProblem("", lines.get((), 1), message)], source)

    problems = [
        ConfigProblem(_render(data, path), line, f"duplicate key (first defined on line {first})")
        for path, line, first in duplicates
    ]
    data, env_problems = _interpolate(data, (), env)
    problems += [ConfigProblem(_render(data, p), _line_for(lines, p), m) for p, m in env_problems]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        skip = {p for p, _ in env_problems}  # a missing ${VAR} already explains these
        problems += _pydantic_problems(exc, data, lines, skip)
    if problems:
        raise ConfigError(_sorted(problems), source)
    return settings


Duplicate = tuple[PathTuple, int, int]
"""``(path, line, line of the first definition)`` of a key given twice in one mapping."""


def _parse_yaml(text: str, source: str) -> tuple[dict[PathTuple, int], list[Duplicate], Any]:
    """Compose, map lines, then construct, all with the safe loader.

    Lines are mapped before construction because the constructor rewrites the
    node tree in place when it resolves ``<<`` merge keys.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, [], None
        lines, duplicates = _line_map(node)
        return lines, duplicates, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem("", None, f"invalid YAML: {exc}")], source) from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.MarkedYAMLError) -> ConfigProblem:
    """Only PyYAML's own wording: its full str() quotes the source, which may hold secrets."""
    mark = exc.problem_mark or exc.context_mark
    context = exc.context
    if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
        context += f" (from line {exc.context_mark.line + 1})"
    words = [w for w in (context, exc.problem) if w]
    message = "invalid YAML: " + ("; ".join(words) or "syntax error")
    return ConfigProblem("", mark.line + 1 if mark else None, message)


# --------------------------------------------------------------------------- line numbers

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _line_map(root: Node) -> tuple[dict[PathTuple, int], list[Duplicate]]:
    """Map each path to the line of its key (list items: the item's first line).

    Also finds duplicate keys, which PyYAML would otherwise resolve silently by
    keeping the last one: a classic way to lose an edit in a long file.
    """
    lines: dict[PathTuple, int] = {(): _line(root)}
    duplicates: list[Duplicate] = []
    key_builder = yaml.SafeLoader("")
    try:
        for path, line, first in _walk_nodes(root, (), key_builder, set()):
            if first is None:
                lines[path] = line
            else:
                duplicates.append((path, line, first))
    finally:
        key_builder.dispose()
    return lines, duplicates


def _walk_nodes(
    node: Node, path: PathTuple, loader: yaml.SafeLoader, active: set[int]
) -> Iterator[tuple[PathTuple, int, int | None]]:
    """Yield ``(path, line, first_line_if_duplicate)`` for every key and list item."""
    if id(node) in active:
        raise yaml.composer.ComposerError(
            None, None, "recursive alias: this value contains itself", node.start_mark
        )
    active.add(id(node))
    if isinstance(node, MappingNode):
        seen: dict[Key, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # merged keys take the line of their parent
                continue
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                )
            child = (*path, key)
            if key in seen:
                yield child, _line(key_node), seen[key]
                continue
            seen[key] = _line(key_node)
            yield child, _line(key_node), None
            yield from _walk_nodes(value_node, child, loader, active)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield (*path, index), _line(item), None
            yield from _walk_nodes(item, (*path, index), loader, active)
    active.discard(id(node))


def _line_for(lines: Mapping[PathTuple, int], path: PathTuple) -> int | None:
    """The line of ``path``, else of its nearest ancestor in the file (e.g. for missing keys)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


# --------------------------------------------------------------------------- interpolation

_TOKEN = re.compile(r"(?P<escape>\$\$\{)|\$\{(?P<body>[^}]*)\}|(?P<open>\$\{)")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def _interpolate(
    data: Any, path: PathTuple, env: Mapping[str, str]
) -> tuple[Any, list[tuple[PathTuple, str]]]:
    """Substitute ``${...}`` in every string value (not in keys).

    A string that cannot be substituted is left as written and its problem
    returned, so the rest of the file is still validated.
    """
    if isinstance(data, str):
        value, messages = _substitute(data, env)
        return value, [(path, m) for m in messages]
    problems: list[tuple[PathTuple, str]] = []
    if isinstance(data, dict):
        out: dict[Key, Any] = {}
        for key, item in data.items():
            out[key], sub = _interpolate(item, (*path, key), env)
            problems += sub
        return out, problems
    if isinstance(data, list):
        items: list[Any] = []
        for index, item in enumerate(data):
            value, sub = _interpolate(item, (*path, index), env)
            items.append(value)
            problems += sub
        return items, problems
    return data, problems


def _substitute(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand one string; messages name variables but never their values."""
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match["escape"]:
            return "${"
        if match["open"]:
            problems.append("unterminated '${' (write '$${' for a literal '${')")
            return match[0]
        body = _BODY.fullmatch(match["body"])
        if body is None:
            problems.append(
                "malformed reference '${...}': expected ${NAME} or ${NAME:-default}, "
                "NAME being letters, digits and '_'"
            )
            return match[0]
        value = env.get(body["name"])
        if value:  # shell semantics: ':-' also replaces an empty value
            return value
        if body["default"] is not None:
            return str(body["default"])
        if value is None:
            problems.append(f"environment variable {body['name']} is not set and has no default")
            return match[0]
        return value

    result = _TOKEN.sub(replace, text)
    return (text, problems) if problems else (result, [])


# --------------------------------------------------------------------------- pydantic errors


def _pydantic_problems(
    exc: ValidationError, data: Any, lines: Mapping[PathTuple, int], skip: set[PathTuple]
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        path, tagged_key = _data_path(data, error["loc"], error["type"] == "missing")
        if path in skip and error["type"] != "extra_forbidden":
            continue
        message = _message(error, path, tagged_key)
        if not path:
            path = _blamed_path(message) or path
        problems.append(ConfigProblem(_render(data, path), _line_for(lines, path), message))
    return problems


def _data_path(data: Any, loc: Sequence[Any], missing: bool) -> tuple[PathTuple, bool]:
    """The part of pydantic's ``loc`` that exists in the data.

    pydantic appends tags (``[key]`` for dict-key errors, union member names)
    that are not YAML keys; those are dropped. For a missing key, the key
    itself is kept although it is, by definition, not in the data.
    """
    node: Any = data
    path: PathTuple = ()
    for index, part in enumerate(loc):
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
        else:
            rest = tuple(loc[index:])
            if missing:
                return (*path, *rest), False
            return path, "[key]" in rest
        path = (*path, part)
    return path, False


def _message(error: Any, path: PathTuple, tagged_key: bool) -> str:
    kind, msg, value = error["type"], str(error["msg"]), error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key_message(path)
    if kind in ("model_type", "dict_type") and value is None:
        # `section:` with every line under it commented out
        return "expected a mapping, got an empty value; delete the key to use the defaults"
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if isinstance(value, str) and len(value) >= 4 and value in msg:
        msg = msg.replace(value, "<redacted>")
    if tagged_key:  # pydantic's input is then the key itself
        return f"invalid key: {msg} (got {_type_name(value)})"
    if path:
        return f"{msg} (got {_type_name(value)})"
    return msg


def _unknown_key_message(path: PathTuple) -> str:
    """Name the allowed keys, with a near miss first: most unknown keys are typos."""
    allowed = _allowed_keys(path[:-1])
    if allowed is None:
        return "unknown key"
    close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key{hint} (allowed: {', '.join(allowed)})"


def _allowed_keys(path: PathTuple) -> list[str] | None:
    """Field names of the section at ``path``, following ``dict[str, Model]`` entries."""
    target: Any = Settings
    expect_entry = False
    for part in path:
        if expect_entry:
            expect_entry = False
            continue
        if not (isinstance(target, type) and issubclass(target, BaseModel)):
            return None
        field = target.model_fields.get(str(part))
        if field is None:
            return None
        target = _unwrap_optional(field.annotation)
        if typing.get_origin(target) is dict:
            target, expect_entry = typing.get_args(target)[1], True
    if expect_entry or not (isinstance(target, type) and issubclass(target, BaseModel)):
        return None
    return list(target.model_fields)


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


_BLAME = re.compile(r"([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)+)\b")


def _blamed_path(message: str) -> PathTuple:
    """For a whole-file (model validator) error, the dotted key its message starts with.

    Cross-field checks such as ``pipeline.lease_s`` vs backend timeouts can
    only be written on the root model, where pydantic has no location to give;
    the convention is that such messages begin with the key they blame.
    """
    match = _BLAME.match(message)
    if match is None:
        return ()
    path = tuple(match[1].split("."))
    return path if path[-1] in (_allowed_keys(path[:-1]) or []) else ()


# --------------------------------------------------------------------------- rendering


def _render(data: Any, path: PathTuple) -> str:
    """Dotted path, list indexes as ``[i]``; decided by the data so int dict keys stay dotted."""
    out = ""
    node = data
    for part in path:
        if isinstance(node, list) and isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if 0 <= part < len(node) else None
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


_TYPE_NAMES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
    list: "list",
    dict: "mapping",
}


def _type_name(value: Any) -> str:
    """YAML's words for a value's type: the type is safe to show, the value is not."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))
