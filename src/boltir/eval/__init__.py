"""ir-measures glue and result tables."""

from .measures import DEFAULT_MEASURES, evaluate, format_table, parse_measures, write_results

__all__ = ["DEFAULT_MEASURES", "evaluate", "format_table", "parse_measures", "write_results"]
