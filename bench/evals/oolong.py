"""OOLONG-style long-context aggregation, generated: lines of `Date || User || Instance`, where each
instance is a question whose TREC coarse label (abbreviation, entity, ...) is not written anywhere and
must be inferred, as in OOLONG's trec_coarse split. Aggregation questions (counts, most and least
common label, per user, per date window) and OOLONG-Pairs questions (pairs of users, scored by F1)
are asked over the same data.

Instances come from per-label templates (words.py), so `label_of` -- the deterministic worker's
"semantic" judgement -- recovers every label exactly, which is what lets a reference program score 100%.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .tasks import Task, size_label, tokens_of
from .words import ACRONYMS, ANIMALS, NOUNS, PEOPLE, PLACES, THINGS, TOPICS

LABELS = ("abbreviation", "entity", "description and abstract concept", "human being", "location", "numeric value")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "abbreviation": ("What does {acronym} stand for?", "What is the full form of {acronym}?",
                     "Expand the abbreviation {acronym} used in {place}."),
    "entity": ("Which {animal} lives near the {noun}?", "Name a kind of {noun} used in {place}.",
               "Which colour is the {noun} of the {animal}?"),
    "description and abstract concept": ("Why do {topic} happen?", "How does the {thing} work?",
                                         "What is the meaning of {topic} in {place}?"),
    "human being": ("Who invented the {thing}?", "Who was {person}?", "Who first mapped {place}?"),
    "location": ("Where is the {noun} of {place}?", "In which country is {place}?",
                 "Where did {person} build the {thing}?"),
    "numeric value": ("How many {noun}s are in {place}?", "When was the {thing} invented?",
                      "How far is {place} from the {noun}?"),
}
SLOTS: dict[str, tuple[str, ...]] = {
    "acronym": ACRONYMS, "animal": ANIMALS, "noun": NOUNS, "person": PEOPLE, "place": PLACES,
    "thing": THINGS, "topic": TOPICS,
}
WEIGHTS = (0.05, 0.22, 0.18, 0.15, 0.27, 0.13)  # skewed, so most and least common are clear
START = datetime.date(2022, 1, 1)
DAYS = 730
DATE_FORMAT = "%b %d, %Y"


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{\w+\}", template)
    return re.compile("^" + "(.+?)".join(map(re.escape, parts)) + "$")


_MATCHERS = [(label, _template_regex(t)) for label, templates in TEMPLATES.items() for t in templates]


def label_of(instance: str) -> str | None:
    """The deterministic worker's judgement: the label whose template produced `instance`."""
    for label, regex in _MATCHERS:
        if regex.match(instance.strip()):
            return label
    return None


@dataclass(frozen=True)
class Row:
    date: datetime.date
    user: int
    instance: str
    label: str

    def line(self) -> str:
        return f"Date: {self.date.strftime(DATE_FORMAT)} || User: {self.user} || Instance: {self.instance}"


def rows_for(rng: random.Random, chars: int, users: int) -> list[Row]:
    user_ids = rng.sample(range(10_000, 100_000), users)
    rows, total = [], 0
    while total < chars:
        label = rng.choices(LABELS, WEIGHTS)[0]
        template = rng.choice(TEMPLATES[label])
        instance = template.format(**{slot: rng.choice(words) for slot, words in SLOTS.items()})
        date = START + datetime.timedelta(days=rng.randrange(DAYS))
        rows.append(Row(date, rng.choice(user_ids), instance, label))
        total += len(rows[-1].line()) + 1
    rows.sort(key=lambda row: row.date)
    return rows


LABEL_REFERENCE = '''import collections, datetime, itertools, re
LABELS = {labels!r}
rows = []
for line in context.splitlines():
    m = re.match(r"Date: (.+?) \\|\\| User: (\\d+) \\|\\| Instance: (.*)$", line)
    if m:
        rows.append((datetime.datetime.strptime(m[1], "%b %d, %Y").date(), int(m[2]), m[3]))
prompts = []
for start in range(0, len(rows), 200):
    body = "\\n".join(f"{{start + i}}\\t{{r[2]}}" for i, r in enumerate(rows[start:start + 200]))
    prompts.append("Label each question below with exactly one of: " + "; ".join(LABELS) + ".\\n"
                   "Reply with one line per question: <id><TAB><label>. No other text.\\n\\n" + body)
labels = {{}}
for reply in llm_query_batched(prompts):
    for answer_line in reply.splitlines():
        m = re.match(r"\\s*(\\d+)\\t(.+?)\\s*$", answer_line)
        if m and m[2].lower() in LABELS:
            labels[int(m[1])] = m[2].lower()
print(len(rows), "rows,", len(labels), "labelled")
data = [(d, u, labels.get(i)) for i, (d, u, _) in enumerate(rows)]
'''
FORMAT = ("The loaded text has one line per data point: `Date: <date> || User: <id> || Instance: <question>`. "
          "Each instance is a question that can be labelled with exactly one of these categories: "
          + "; ".join(LABELS) + ". The labels are not written in the data: infer each one from the question. ")


@dataclass(frozen=True)
class Query:
    kind: str
    question: str
    gold: str
    scoring: str
    program: str  # appended to LABEL_REFERENCE; `data` is [(date, user, label)]


def aggregation_queries(rng: random.Random, rows: list[Row]) -> list[Query]:
    counts = collections.Counter(row.label for row in rows)
    ranked = counts.most_common()
    label = rng.choice(LABELS)
    queries = [
        Query("count", f"How many data points should be classified as label '{label}'? Answer with a number.",
              str(counts[label]), "number", f"FINAL(sum(1 for _, _, l in data if l == {label!r}))"),
    ]
    if len(ranked) == len(LABELS) and ranked[0][1] > ranked[1][1]:
        queries.append(Query("most-common", "Which label is the most common? Answer with the label only.",
                             ranked[0][0], "exact",
                             "FINAL(collections.Counter(l for _, _, l in data).most_common(1)[0][0])"))
    if len(ranked) == len(LABELS) and ranked[-1][1] < ranked[-2][1]:
        queries.append(Query("least-common", "Which label is the least common? Answer with the label only.",
                             ranked[-1][0], "exact",
                             "FINAL(collections.Counter(l for _, _, l in data).most_common()[-1][0])"))
    user = rng.choice(rows).user
    label = rng.choice(LABELS)
    queries.append(Query(
        "per-user", f"For user {user}, how many data points have the label '{label}'? Answer with a number.",
        str(sum(1 for row in rows if row.user == user and row.label == label)), "number",
        f"FINAL(sum(1 for _, u, l in data if u == {user} and l == {label!r}))"))
    first = START + datetime.timedelta(days=rng.randrange(DAYS // 2))
    last = first + datetime.timedelta(days=rng.randrange(30, DAYS // 2))
    label = rng.choice(LABELS)
    window = f"between {first.strftime(DATE_FORMAT)} and {last.strftime(DATE_FORMAT)} (inclusive)"
    queries.append(Query(
        "date-window", f"How many data points dated {window} have the label '{label}'? Answer with a number.",
        str(sum(1 for row in rows if first <= row.date <= last and row.label == label)), "number",
        f"FINAL(sum(1 for d, _, l in data if datetime.date.fromisoformat({first.isoformat()!r}) <= d <= "
        f"datetime.date.fromisoformat({last.isoformat()!r}) and l == {label!r}))"))
    return queries


PairRule = Callable[[collections.Counter[str], collections.Counter[str]], bool]
PAIR_USERS = 60


def pair_queries(rng: random.Random, rows: list[Row]) -> list[Query]:
    """OOLONG-Pairs: which pairs of users satisfy a condition on their labels; answers are sets of pairs.

    Each rule is written twice on purpose: as the gold predicate here, and as the text of the reference
    program's predicate, so a slip in one shows up as a score below 100%."""
    by_user: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for row in rows:
        by_user[row.user][row.label] += 1
    every_pair = list(itertools.combinations(sorted(by_user), 2))
    for _ in range(100):  # labels whose answers are neither empty nor every pair, when the data allows
        a, b = rng.sample(LABELS, 2)
        queries = _pair_queries(a, b, by_user, every_pair)
        if all(q.gold and q.gold.count("\n") + 1 < len(every_pair) for q in queries):
            break
    return queries


def _pair_queries(a: str, b: str, by_user: dict[int, collections.Counter[str]],
                  every_pair: list[tuple[int, int]]) -> list[Query]:
    n = max(1, sorted(counts[a] for counts in by_user.values())[len(by_user) // 2])
    rules: list[tuple[str, str, PairRule, str]] = [
        ("at-least", f"both users have at least {n} data points labelled '{a}'",
         lambda x, y: x[a] >= n and y[a] >= n,
         f"lambda x, y: x[{a!r}] >= {n} and y[{a!r}] >= {n}"),
        ("cross", f"one user has more data points labelled '{a}' than '{b}' and the other user has more "
                  f"labelled '{b}' than '{a}'",
         lambda x, y: (x[a] > x[b] and y[b] > y[a]) or (x[b] > x[a] and y[a] > y[b]),
         f"lambda x, y: any(p[{a!r}] > p[{b!r}] and q[{b!r}] > q[{a!r}] for p, q in ((x, y), (y, x)))"),
        ("but-not", f"both users have at least one data point labelled '{a}' and none labelled '{b}'",
         lambda x, y: x[a] > 0 == x[b] and y[a] > 0 == y[b],
         f"lambda x, y: all(s[{a!r}] and not s[{b!r}] for s in (x, y))"),
    ]
    queries = []
    for kind, condition, rule, rule_source in rules:
        gold = [(u, v) for u, v in every_pair if rule(by_user[u], by_user[v])]
        program = (
            "by_user = collections.defaultdict(collections.Counter)\n"
            "for _, u, l in data:\n    by_user[u][l] += 1\n"
            f"rule = {rule_source}\n"
            "pairs = [(u, v) for u, v in itertools.combinations(sorted(by_user), 2) if rule(by_user[u], by_user[v])]\n"
            "print(len(pairs), 'pairs')\n"
            "FINAL('\\n'.join(f'({u}, {v})' for u, v in pairs))"
        )
        question = (f"List all pairs of user IDs (each pair once, lower ID first) where {condition}. "
                    "Answer with one pair per line, as (id1, id2).")
        queries.append(Query(f"pairs-{kind}", question, "\n".join(f"({u}, {v})" for u, v in gold),
                             "f1_pairs", program))
    return queries


def _context(workdir: Path, seed: int, suite: str, tokens: int, users: int) -> tuple[random.Random, list[Row], Path]:
    rng = random.Random(f"{suite}-{seed}-{tokens}")
    rows = rows_for(rng, tokens * 4, users)
    path = workdir / f"{suite}-{size_label(tokens)}.txt"
    path.write_text("\n".join(row.line() for row in rows) + "\n")
    return rng, rows, path


def _tasks(suite: str, size: int, path: Path, queries: list[Query]) -> list[Task]:
    chars = path.stat().st_size
    return [
        Task(suite=suite, task_id=f"{suite}-{size_label(size)}-{q.kind}", size=size, tokens=tokens_of(chars),
             question=FORMAT + q.question, gold=q.gold, scoring=q.scoring,  # type: ignore[arg-type]
             source=(str(path),), reference=LABEL_REFERENCE.format(labels=LABELS) + q.program)
        for q in queries
    ]


DEFAULT_SIZES = (8_000, 32_000, 128_000, 1_000_000)
DEFAULT_PAIR_SIZES = (8_000, 32_000)  # the paper's OOLONG-Pairs is 32K tokens; beyond, every user has every label


def generate(workdir: Path, seed: int, sizes: tuple[int, ...] = DEFAULT_SIZES) -> list[Task]:
    tasks = []
    for size in sizes:
        rng, rows, path = _context(workdir, seed, "oolong", size, users=max(20, size // 1_000))
        tasks += _tasks("oolong", size, path, aggregation_queries(rng, rows))
    return tasks


def generate_pairs(workdir: Path, seed: int, sizes: tuple[int, ...] = DEFAULT_PAIR_SIZES) -> list[Task]:
    tasks = []
    for size in sizes:
        rng, rows, path = _context(workdir, seed, "oolong-pairs", size, users=PAIR_USERS)
        tasks += _tasks("oolong-pairs", size, path, pair_queries(rng, rows))
    return tasks
