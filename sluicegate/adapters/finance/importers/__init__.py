"""Importers: the files banks and analysts already have → finance reports.

Each importer reads one format into :class:`~sluicegate.adapters.finance.models.Report`
objects (one per statement or filing period); :func:`detect` picks the
importer by content, so ``sluicegate finance push`` needs no format flag.
"""

from __future__ import annotations

from sluicegate.adapters.finance.importers.detect import FORMATS, ImportFailed, detect, import_file

__all__ = ["FORMATS", "ImportFailed", "detect", "import_file"]
