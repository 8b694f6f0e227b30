"""Tokenizer tokens as people read them: pure string helpers, no torch (the figures use them).

GPT-2's byte-level BPE marks a leading space with 'Ġ' and a newline with 'Ċ'; SentencePiece (T5, SigLIP) marks a
word's start with '▁'; WordPiece marks a word's continuation with '##'; CLIP's BPE marks a word's end with '</w>'.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

END_OF_WORD = "</w>"
_START_OF_WORD = ("▁", "Ġ")
# Special tokens by their look ([CLS], <s>, </s>, <|endoftext|>), for token lists that come without a special mask.
_LOOKS_SPECIAL = re.compile(r"^(\[[A-Z]+\]|<[^<>\s]+>)$")


def clean_token(token: str) -> str:
    """Readable form of a tokenizer token: GPT-2 'Ġ' and SentencePiece '▁' become a leading space, CLIP's
    end-of-word '</w>' a trailing one (so pieces read as the text they spell). Idempotent."""
    token = token.replace(END_OF_WORD, " ").replace("Ġ", " ").replace("▁", " ")
    token = token.replace("Ċ", "\\n").replace("ĉ", "\\t")
    token = token.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    # Control characters would break tick labels; show them as code points.
    return "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in token)


def display_tokens(tokens: list[str]) -> list[str]:
    """`clean_token` of each token, same length and order."""
    return [clean_token(t) for t in tokens]


def is_punctuation(token: str) -> bool:
    """Whether the token, cleaned and without a '##' prefix, is only punctuation (an empty token is not)."""
    text = clean_token(token).strip().removeprefix("##")
    return bool(text) and all(c in string.punctuation or unicodedata.category(c).startswith("P") for c in text)


def join_pieces(pieces: list[str]) -> str:
    """The word that word-pieces spell: the first piece as it is, the rest without '##', 'Ġ' or '▁' markers.

    CLIP's '</w>' stays where it is, on the last piece, so the joined word still ends a word.
    """
    if len(pieces) == 1:
        return pieces[0]
    return pieces[0] + "".join(p.removeprefix("##").replace("Ġ", "").replace("▁", "") for p in pieces[1:])


def piece_text(token: str) -> str:
    """The letters of a token without any word marker ('##', 'Ġ', '▁', '</w>')."""
    return token.removeprefix("##").removesuffix(END_OF_WORD).replace("Ġ", "").replace("▁", "")


def looks_special(token: str) -> bool:
    """Whether the token reads as a special token: "[CLS]", "<s>", "</s>", "<|endoftext|>" (not "</w>"-pieces)."""
    return bool(_LOOKS_SPECIAL.match(token)) and not token.endswith(END_OF_WORD)


def word_ids(tokens: Sequence[str], special: Sequence[bool] | None = None) -> list[int | None]:
    """Per token, the index of the word it belongs to (None for special tokens), read from the pieces' markers.

    WordPiece: a '##' piece continues the word before it. SentencePiece and GPT-2 BPE (when the sequence uses
    '▁' or 'Ġ'): a marked piece starts a word, an unmarked one continues it. CLIP: a piece after one ending in
    '</w>' starts a word. For tokenizers that report no word ids themselves (SentencePiece-backed ones).
    `special`: bool per token; default: :func:`looks_special`.
    """
    special = [looks_special(t) for t in tokens] if special is None else list(special)
    words = [t for t, s in zip(tokens, special, strict=True) if not s]
    marks_start = any(t.startswith(_START_OF_WORD) for t in words)
    marks_end = any(t.endswith(END_OF_WORD) for t in words)
    ids: list[int | None] = []
    word, open_word = -1, False  # open_word: the previous token is part of a word that may continue
    for token, is_special in zip(tokens, special, strict=True):
        if is_special:
            ids.append(None)
            open_word = False
            continue
        if token.startswith(_START_OF_WORD):
            new = True
        elif token.startswith("##") or marks_start or marks_end:
            new = not open_word
        else:  # WordPiece: an unmarked piece is a word of its own
            new = True
        if new:
            word += 1
        ids.append(word)
        open_word = not token.endswith(END_OF_WORD)
    return ids
