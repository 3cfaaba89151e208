"""Search text — 检索文本: how catalogue text and queries become tokens, with synonyms.

Text is folded (full-width → half-width, lower case, accents and punctuation dropped) and cut into
tokens: each Latin word, and each pair of neighbouring Han characters plus the last character of a
run (最低生活 → 最低 低生 生活 活), so any Chinese substring can be found without a word list.
The synonym table (``data/synonyms.toml``) rewrites terms into their group's canonical form
(低保 → 最低生活保障, death → 死亡). A query word is found when every token of the word as typed,
or of its canonical form, is in a text — a Latin word or a lone Han character as a prefix.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources

MAX_WORDS = 8  # words of a query looked for; the rest are ignored
MAX_LENGTH = 40  # characters of a query word, and of a Latin token

_HAN = "\u3400-\u4dbf\u4e00-\u9fff"
_RUN = re.compile(f"[a-z0-9]+|[{_HAN}]+")
_HAN_ONLY = re.compile(f"[{_HAN}]+")
_ACCENTED = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")


def fold(text: str) -> str:
    """``text`` half-width and lower case, as runs of letters, digits or Han characters.

    Runs are separated by one space; anything else is dropped (Ｄｅａｔｈ，死亡 → ``death 死亡``).
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if _ACCENTED.search(text):
        decomposed = unicodedata.normalize("NFD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_RUN.findall(text))


def tokens(folded: str) -> list[str]:
    """The tokens of folded text: Latin words, Han bigrams and each Han run's last character."""
    out: list[str] = []
    for run in folded.split():
        out += _run_tokens(run)
    return out


@functools.lru_cache(maxsize=1 << 16)
def _run_tokens(run: str) -> tuple[str, ...]:
    if run.isascii() or len(run) == 1:
        return (run[:MAX_LENGTH],)
    return (*[a + b for a, b in zip(run, run[1:], strict=False)], run[-1])


@dataclass(frozen=True)
class Synonyms:
    """The synonym table: each folded term and the canonical form of its group.

    Han terms match anywhere in a run of Han characters, English terms whole words only; at each
    place the longest term wins, so 居民身份证 is kept whole rather than read as 居民 + 身份证.
    """

    canonical: dict[str, str]
    han: dict[str, tuple[str, ...]] = field(default_factory=dict)  # first character → terms
    starts: dict[str, int] = field(default_factory=dict)  # first word → most words in a term
    han_starts: re.Pattern[str] | None = None
    _seen: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_groups(cls, groups: Iterable[Sequence[str]]) -> Synonyms:
        """The table of ``groups`` (first term canonical); groups with one canonical merge.

        Raises ValueError when a term belongs to two groups or mixes Han and Latin letters.
        """
        canonical: dict[str, str] = {}
        for group in groups:
            head = fold(group[0])
            for term in map(fold, group):
                if not term or not (term.isascii() or _HAN_ONLY.fullmatch(term)):
                    raise ValueError(f"synonym {term!r} must be all Han or all Latin")
                if canonical.setdefault(term, head) != head:
                    raise ValueError(
                        f"synonym {term!r} is in the groups of {head!r} and {canonical[term]!r}"
                    )
        han: dict[str, list[str]] = {}
        starts: dict[str, int] = {}
        for term in sorted(canonical, key=len, reverse=True):
            if term.isascii():
                first, n = term.split(" ")[0], term.count(" ") + 1
                starts[first] = max(starts.get(first, 0), n)
            else:
                han.setdefault(term[0], []).append(term)
        firsts = re.compile("[" + re.escape("".join(han)) + "]") if han else None
        return cls(canonical, {k: tuple(v) for k, v in han.items()}, starts, firsts)

    def rewrite(self, folded: str) -> str:
        """Folded text with every synonym replaced by its group's canonical form."""
        runs = folded.split(" ")
        out: list[str] = []
        i = 0
        while i < len(runs):
            run = runs[i]
            if not run.isascii():
                out.append(self._rewrite_han(run))
                i += 1
                continue
            for n in range(min(self.starts.get(run, 0), len(runs) - i), 0, -1):
                phrase = " ".join(runs[i : i + n])
                if phrase in self.canonical:
                    out.append(self.canonical[phrase])
                    i += n
                    break
            else:
                out.append(run)
                i += 1
        return " ".join(out)

    def _rewrite_han(self, run: str) -> str:
        if self.han_starts is None:
            return run
        if run in self._seen:
            return self._seen[run]
        out: list[str] = []
        done = 0
        for found in self.han_starts.finditer(run):
            at = found.start()
            if at < done:
                continue
            for term in self.han[run[at]]:
                if run.startswith(term, at):
                    out += (run[done:at], self.canonical[term])
                    done = at + len(term)
                    break
        rewritten = "".join(out) + run[done:] if out else run
        if len(self._seen) < 1 << 16:
            self._seen[run] = rewritten
        return rewritten


@functools.cache
def synonyms() -> Synonyms:
    """The synonym table shipped in ``catalogue/data/synonyms.toml``."""
    path = resources.files("haihe.catalogue").joinpath("data", "synonyms.toml")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return Synonyms.from_groups([*data["zh"], *data["en"]])


Term = tuple[str, bool]  # a token, and whether it is matched as a prefix


@dataclass(frozen=True)
class Word:
    """One word of a query and the token sets that find it: as typed, and in canonical form."""

    text: str
    alternatives: tuple[tuple[Term, ...], ...]


def _terms(folded: str) -> tuple[Term, ...]:
    terms: list[Term] = []
    for run in folded.split():
        if run.isascii() or len(run) == 1:
            terms.append((run[:MAX_LENGTH], True))
        else:
            terms.extend((run[i : i + 2], False) for i in range(len(run) - 1))
    return tuple(dict.fromkeys(terms))


def parse(q: str | None) -> list[Word]:
    """The words of a query, neighbours that form one synonym ("ride hailing") kept together."""
    table = synonyms()
    parts = [w for w in (fold(p[:MAX_LENGTH]) for p in (q or "").split()[: MAX_WORDS * 4]) if w]
    merged: list[str] = []
    i = 0
    while i < len(parts):
        longest = min(table.starts.get(parts[i], 1), len(parts) - i)
        n = next(
            (n for n in range(longest, 1, -1) if " ".join(parts[i : i + n]) in table.canonical), 1
        )
        merged.append(" ".join(parts[i : i + n]))
        i += n
    words = []
    for text in dict.fromkeys(merged):
        alternatives = dict.fromkeys([_terms(text), _terms(table.rewrite(text))])
        words.append(Word(text, tuple(alternatives)))
    return words[:MAX_WORDS]
