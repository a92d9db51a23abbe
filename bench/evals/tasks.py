"""What every suite produces: tasks with a question, a gold answer, a scoring rule and a reference program.

Scoring follows the RLM paper: numbers score 0.75^|error| (OOLONG), labels and locations by exact match
after light normalisation, sets of pairs or paths by F1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Scoring = Literal["exact", "number", "f1_pairs", "f1_lines"]


@dataclass(frozen=True)
class Task:
    suite: str  # needle, oolong, oolong-pairs, codeqa
    task_id: str
    size: int  # nominal size in tokens (8K, 1M, ...), what the suite asked the generator for
    tokens: int  # estimated size of what was generated (4 characters a token, as the REPL's count_tokens)
    question: str  # what a root model is asked, self-contained
    gold: str  # the exact answer; for F1 tasks one item per line
    scoring: Scoring
    source: tuple[str, ...]  # paths load_context gets
    reference: str  # the program a strong root model would run in the REPL; it ends in FINAL(...)
    evidence_bytes: int = 0  # code QA: bytes of the files a host would read to answer without our tools
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> tuple[str, ...]:
        """Tasks over the same files share one server and one load."""
        return self.source


def score(task: Task, answer: str | None) -> float:
    if not answer:
        return 0.0
    if task.scoring == "number":
        return score_number(answer, float(task.gold))
    if task.scoring == "exact":
        return 1.0 if normalise(answer) == normalise(task.gold) else 0.0
    parse = parse_pairs if task.scoring == "f1_pairs" else parse_lines
    return f1(parse(answer), parse(task.gold))


def normalise(text: str) -> str:
    text = text.strip().strip("`'\"").strip()
    text = re.sub(r"^(final\s+)?answer\s*:\s*", "", text, flags=re.IGNORECASE)
    return text.strip().strip("`'\".").strip().lower()


def score_number(answer: str, gold: float) -> float:
    found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", answer)
    if not found:
        return 0.0
    value = float(found[-1].replace(",", ""))
    return 0.75 ** abs(value - gold) if math.isfinite(value) else 0.0


def parse_pairs(text: str) -> set[tuple[int, int]]:
    pairs = set()
    for first, second in re.findall(r"(\d+)\s*,\s*(\d+)", text):
        a, b = int(first), int(second)
        pairs.add((min(a, b), max(a, b)))
    return pairs


def parse_lines(text: str) -> set[str]:
    items = (re.sub(r"^\s*(?:[-*]|\d+[.)])\s+", "", line).strip().strip("`'\" ,") for line in text.splitlines())
    return {item for item in items if item}


def f1(predicted: Iterable[object], gold: Iterable[object]) -> float:
    predicted, gold = set(predicted), set(gold)
    if not predicted and not gold:
        return 1.0
    hits = len(predicted & gold)
    if not hits:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


def tokens_of(chars: int) -> int:
    return math.ceil(chars / 4)


def size_label(tokens: int) -> str:
    for unit, scale in (("M", 1_000_000), ("K", 1_000)):
        if tokens >= scale:
            return f"{tokens / scale:.3g}{unit}"
    return str(tokens)
