"""``python -m app.batch``: folders of photos and videos labelled with exact resume, worker processes and
Dask clusters.
"""

from typing import TYPE_CHECKING

from app.core._lazy import attach

_EXPORTS = {
    "build_parser": "_cli",
    "label_items": "_cli",
    "main": "_cli",
    "run": "_cli",
    "RunSettings": "_journal",
    "prepare_outputs": "_journal",
    "write_summary": "_journal",
    "headless": "_live",
    "Item": "_scan",
    "Scan": "_scan",
    "scan_inputs": "_scan",
}
__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)

if TYPE_CHECKING:  # the same names, for type checkers and import-linter
    from app.batch._cli import build_parser as build_parser
    from app.batch._cli import label_items as label_items
    from app.batch._cli import main as main
    from app.batch._cli import run as run
    from app.batch._journal import RunSettings as RunSettings
    from app.batch._journal import prepare_outputs as prepare_outputs
    from app.batch._journal import write_summary as write_summary
    from app.batch._live import headless as headless
    from app.batch._scan import Item as Item
    from app.batch._scan import Scan as Scan
    from app.batch._scan import scan_inputs as scan_inputs
