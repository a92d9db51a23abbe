"""What the tools return: result models (their JSON schemas are the tools' output schemas) and the shaping
that fits them to what a host's model reads (models.py, shaping.py)."""

from .models import (
    AnswerModel,
    CheckpointBrief,
    ContextBrief,
    ContextSummary,
    ExecReport,
    Report,
    RLMReport,
    SessionLimits,
    SessionReport,
    SubQueryReport,
    SymbolReport,
)

__all__ = ["AnswerModel", "CheckpointBrief", "ContextBrief", "ContextSummary", "ExecReport", "RLMReport", "Report",
           "SessionLimits", "SessionReport", "SubQueryReport", "SymbolReport"]
