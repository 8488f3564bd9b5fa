"""Question text as words and n-grams, for the lexical linker and value retrieval."""

from __future__ import annotations

import re

# function words never linked on their own (a value or a name made only of these is not a match)
STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or not no is are was were be been do does did what which who "
    "whom whose when where how many much all any each every list show give find return tell me their its his "
    "her they them that this these those than then there have has had as it name names number count id ids "
    "please also both either only more most less least than order sorted ascending descending".split()
)
_WORD = re.compile(r"[0-9A-Za-z\u00C0-\u024F]+(?:['.\-][0-9A-Za-z\u00C0-\u024F]+)*")


def words(text: str) -> list[str]:
    """Lower-case words ("O'Brien" and "U.S." stay whole)."""
    return [w.lower() for w in _WORD.findall(text)]


def normalize(text: str) -> str:
    """Lower case, words joined by single spaces: the form values and names are compared in."""
    return " ".join(words(text))


def singular(word: str) -> str:
    """A crude English singular (names in Spider are plural as often as not)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def ngrams(text: str, max_n: int = 5) -> list[str]:
    """Normalised word n-grams of the question (1..max_n words), unigrams of function words left out."""
    ws = words(text)
    out = []
    for n in range(1, max_n + 1):
        for i in range(len(ws) - n + 1):
            gram = ws[i:i + n]
            if n == 1 and gram[0] in STOPWORDS:
                continue
            out.append(" ".join(gram))
    return list(dict.fromkeys(out))


def quoted(text: str) -> list[str]:
    """Phrases the question quotes ("..." or '...'), normalised."""
    return [normalize(a or b) for a, b in re.findall(r"\"([^\"]+)\"|“([^”]+)”", text)]
