"""SQL skeletons: a query's keywords and operators with its names and values blanked (DAIL-SQL).

`SELECT name FROM singer WHERE age > 30` -> `select _ from _ where _ > _`. Two queries with the
same skeleton have the same shape whatever their database; few-shot selection compares the
skeleton of a zero-shot draft with the skeletons of the candidate examples.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot.tokens import TokenType

_BLANK = {
    TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING, TokenType.NUMBER,
    TokenType.NATIONAL_STRING, TokenType.BIT_STRING, TokenType.HEX_STRING, TokenType.PARAMETER,
}


@lru_cache(maxsize=16384)
def sql_skeleton(sql: str) -> tuple[str, ...]:
    """Skeleton tokens of `sql` (sqlglot's SQLite tokenizer); () when it does not tokenize.

    Names and literals become `_`, a qualified name `T1.name` one `_`; keywords and function
    names are lower-cased.
    """
    try:
        tokens = sqlglot.tokenize(sql or "", read="sqlite")
    except Exception:
        return ()
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.SEMICOLON:
            break
        is_call = i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN
        if tok.token_type in _BLANK and not is_call:  # function names (count, max) are kept
            if out[-2:-1] == ["_"] and out[-1] == ".":  # T1 . name -> one blank
                out.pop()
                continue
            out.append("_")
        else:
            out.append(tok.text.lower())
    return tuple(out)


def skeleton_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two skeletons' token bigram sets (1.0: same shape)."""
    sa, sb = _bigrams(sql_skeleton(a)), _bigrams(sql_skeleton(b))
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def _bigrams(tokens: tuple[str, ...]) -> set[tuple[str, str]]:
    padded = ("<s>",) + tokens + ("</s>",)
    return set(zip(padded, padded[1:]))
