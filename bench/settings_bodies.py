"""Settings bodies of a chosen size for the fingerprint benchmark: many stop words and synonyms.

Deterministic (fixed seed), so every run fingerprints the same bytes. Words are made of
syllables so they look like words to the dev node's normalization (plain ASCII: NFKD leaves them
as they are), and every word is distinct so no de-duplication shrinks the body."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any, Iterator

SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]
SEED = 20240601


def _words(rng: random.Random) -> Iterator[str]:
    """Distinct pseudo-words: a counter spelled in syllables, with a random tail for variety."""
    for n in itertools.count():
        digits = []
        while True:
            n, r = divmod(n, len(SYLLABLES))
            digits.append(SYLLABLES[r])
            if n == 0:
                break
        yield "".join(digits) + rng.choice(SYLLABLES)


def settings_body(target_bytes: int) -> dict[str, Any]:
    """A settings PATCH of about `target_bytes` of compact JSON (within 1 %): half stop words, half
    synonyms (each key with 4 alternatives)."""
    rng = random.Random(SEED)
    words = _words(rng)
    stop_words: list[str] = []
    synonyms: dict[str, list[str]] = {}
    size = 0
    while size < target_bytes:
        if size < target_bytes // 2:
            word = next(words)
            stop_words.append(word)
            size += len(word) + 3  # quotes and comma
        else:
            key = next(words)
            alternatives = [next(words) for _ in range(4)]
            synonyms[key] = alternatives
            size += len(key) + 4 + sum(len(a) + 3 for a in alternatives) + 2
    return {"stopWords": stop_words, "synonyms": synonyms}


def encoded(target_bytes: int) -> bytes:
    return json.dumps(settings_body(target_bytes), separators=(",", ":")).encode()


if __name__ == "__main__":
    for target in (10_000, 1_000_000, 5_000_000):
        print(target, len(encoded(target)))
