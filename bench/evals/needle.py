"""Needle in a haystack, RULER's single-needle style: one "special magic number" hidden in filler prose
at a seeded depth, a few distractor needles under other keys, the question names the key."""

from __future__ import annotations

import random
from pathlib import Path

from .tasks import Task, size_label, tokens_of
from .words import ADJECTIVES, NOUNS, PLACES, VERBS

DEFAULT_SIZES = (8_000, 32_000, 128_000, 1_000_000, 10_000_000)
DISTRACTORS = 4

REFERENCE = '''import re
hits = grep(r"special magic numbers? for {key} is: (\\d+)", max_hits=5)
print(hits)
FINAL(re.search(r"is: (\\d+)", hits[0][2]).group(1))
'''


def sentence_pool(rng: random.Random, count: int = 4_000) -> list[str]:
    return [
        f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(ADJECTIVES)} "
        f"{rng.choice(NOUNS)} near {rng.choice(PLACES)}."
        for _ in range(count)
    ]


def key_for(rng: random.Random) -> str:
    return f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}-{rng.randrange(100, 1000)}"


def haystack(rng: random.Random, chars: int) -> str:
    """Filler prose of about `chars` characters, in paragraphs: fast enough for 40 MB (10M tokens)."""
    pool = sentence_pool(rng)
    paragraphs, total = [], 0
    while total < chars:
        paragraph = " ".join(rng.choices(pool, k=8))
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def generate(workdir: Path, seed: int, sizes: tuple[int, ...] = DEFAULT_SIZES) -> list[Task]:
    tasks = []
    for tokens in sizes:
        rng = random.Random(f"needle-{seed}-{tokens}")
        keys = list(dict.fromkeys(key_for(rng) for _ in range(DISTRACTORS + 1)))
        numbers = [str(rng.randrange(1_000_000, 10_000_000)) for _ in keys]
        text = haystack(rng, tokens * 4)
        paragraphs = text.split("\n\n")
        for key, number in zip(keys, numbers, strict=True):
            depth = rng.randrange(len(paragraphs) + 1)
            paragraphs.insert(depth, f"One of the special magic numbers for {key} is: {number}.")
        text = "\n\n".join(paragraphs)
        path = workdir / f"needle-{size_label(tokens)}.txt"
        path.write_text(text)
        tasks.append(Task(
            suite="needle", task_id=f"needle-{size_label(tokens)}", size=tokens, tokens=tokens_of(len(text)),
            question=(f"Somewhere in the loaded text is a special magic number for {keys[0]}. What is it? "
                      "Answer with the number only."),
            gold=numbers[0], scoring="exact", source=(str(path),), reference=REFERENCE.format(key=keys[0]),
        ))
    return tasks
