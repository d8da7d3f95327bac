"""Format detection by content (never trusting the file name alone)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sluicegate.adapters.finance.errors import ReportRejected, load_report
from sluicegate.adapters.finance.importers.camt053 import import_camt053
from sluicegate.adapters.finance.importers.common import ImportFailed
from sluicegate.adapters.finance.importers.companyfacts import import_companyfacts
from sluicegate.adapters.finance.importers.csv_presets import import_csv
from sluicegate.adapters.finance.importers.ixbrl import import_ixbrl
from sluicegate.adapters.finance.importers.markdown_filing import import_markdown_filing
from sluicegate.adapters.finance.importers.ofx import import_ofx
from sluicegate.adapters.finance.importers.swift_mt940 import import_mt940
from sluicegate.adapters.finance.importers.xbrl import import_xbrl
from sluicegate.adapters.finance.models import Report

__all__ = ["FORMATS", "ImportFailed", "detect", "import_file"]


def _report_json(data: bytes) -> list[Report]:
    try:
        return [load_report(data)]
    except ReportRejected as exc:
        fields = ", ".join(f"{e['field']}: {e['message']}" for e in exc.errors[:5])
        raise ImportFailed(f"report JSON: {fields}") from None


FORMATS: dict[str, Callable[[bytes], list[Report]]] = {
    "report-json": _report_json,
    "companyfacts": import_companyfacts,
    "xbrl": import_xbrl,
    "ixbrl": import_ixbrl,
    "markdown-filing": import_markdown_filing,
    "camt053": import_camt053,
    "ofx": import_ofx,
    "mt940": import_mt940,
    "csv": import_csv,
}


def detect(data: bytes, name: str = "") -> str:
    head = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if name.lower().endswith(".md") and b"BALANCE SHEET" in data:
        return "markdown-filing"
    if head.startswith("{1:") or re.search(r"^:20:", head, re.MULTILINE):
        return "mt940"
    if head.startswith("{"):
        return (
            "companyfacts"
            if '"facts"' in data[:200_000].decode("utf-8", "replace") and '"entityName"' in head
            else "report-json"
        )
    if head.startswith("<") or head.startswith("<?xml"):
        if "camt.053" in head:
            return "camt053"
        if "http://www.xbrl.org/2003/instance" in head:
            return "xbrl"
        if "<OFX>" in head.upper():
            return "ofx"
        if "<html" in head.lower() and b"ix:nonnumeric" in data[:2_000_000].lower():
            return "ixbrl"
        if "<html" in head.lower() and b"ix:nonfraction" in data[:2_000_000].lower():
            return "ixbrl"
    if head.upper().startswith("OFXHEADER") or "<OFX>" in head.upper():
        return "ofx"
    if re.search(r"^:20:", head, re.MULTILINE) or head.startswith("{1:"):
        return "mt940"
    if (
        name.lower().endswith((".csv", ".txt"))
        or "," in head.splitlines()[0]
        or ";" in head.splitlines()[0]
    ):
        return "csv"
    raise ImportFailed("the file's format is not one of: " + ", ".join(FORMATS))


def import_file(path: Path) -> tuple[str, list[Report]]:
    data = path.read_bytes()
    fmt = detect(data, path.name)
    return fmt, FORMATS[fmt](data)
