"""The report stage: ``build`` collects a study's report as a dict, ``markdown`` and ``html``
render it, ``write`` writes the files. Everything comes from the study storage alone."""

from autoft.report.build import build_report, snippet
from autoft.report.markdown import render_markdown, sections
from autoft.report.write import write_report

__all__ = ["build_report", "render_markdown", "sections", "snippet", "write_report"]
