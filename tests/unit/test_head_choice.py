"""pick_head / word_attention on a hand-built attention result (2 layers × 2 heads)."""

import numpy as np

from encoderscope.attention_maps import AttentionResult
from encoderscope.head_choice import best_head, pick_head, word_attention

# "[CLS] the bank by the river fish ##ing [SEP]": "fishing" is two pieces (word 4).
TOKENS = ["[CLS]", "the", "bank", "by", "river", "fish", "##ing", "[SEP]"]
WORD_IDS = (None, 0, 1, 2, 3, 4, 4, None)
T = len(TOKENS)
BANK, RIVER, FISH, ING = 2, 4, 5, 6


def _result(rows: dict) -> AttentionResult:
    """Uniform attention everywhere except the "bank" row of the listed (layer, head)s."""
    w = np.full((2, 2, T, T), 1 / T, np.float32)
    for (layer, head), row in rows.items():
        w[layer, head, BANK] = row
    special = np.array([t.startswith("[") for t in TOKENS])
    return AttentionResult(tokens=TOKENS, weights=w, special=special, word_ids=WORD_IDS)


def _row(cells: dict) -> np.ndarray:
    """The "bank" query row: {key index: weight}, the rest of the mass on [CLS]."""
    row = np.zeros(T, np.float32)
    for index, value in cells.items():
        row[index] = value
    row[0] += 1 - row.sum()
    return row


def test_picks_the_head_where_bank_reads_river_and_fishing():
    res = _result({
        (0, 1): _row({RIVER: 0.5}),                          # river only: 0.5
        (1, 0): _row({RIVER: 0.3, FISH: 0.2, ING: 0.2}),   # river + both fishing pieces: 0.7
    })
    scores = word_attention(res, "bank", ["river", "fishing"])
    assert scores.shape == (2, 2)
    np.testing.assert_allclose(scores, [[3 / T, 0.5], [0.7, 3 / T]], rtol=1e-5)
    assert pick_head(res, "bank", ["river", "fishing"]) == (1, 0)


def test_case_insensitive_and_averaged_over_query_occurrences():
    tokens = ["[CLS]", "Bank", "river", "bank", "[SEP]"]
    w = np.zeros((1, 2, 5, 5), np.float32)
    w[..., 0] = 1.0
    w[0, 1, 1] = [0.2, 0, 0.8, 0, 0]  # first "Bank" → river 0.8
    w[0, 1, 3] = [0.8, 0, 0.2, 0, 0]  # second "bank" → river 0.2
    res = AttentionResult(tokens=tokens, weights=w, word_ids=(None, 0, 1, 2, None))
    np.testing.assert_allclose(word_attention(res, "BANK", ["River"]), [[0.0, 0.5]], rtol=1e-6)
    assert pick_head(res, "bank", ["river"]) == (0, 1)


def test_missing_words_fall_back_to_the_first_head():
    res = _result({(1, 1): _row({RIVER: 0.9})})
    assert word_attention(res, "money", ["river"]) is None
    assert pick_head(res, "money", ["river"]) == (0, 0)
    assert pick_head(res, "bank", ["lake", "boat"]) == (0, 0)
    # One key missing: the others still count.
    assert pick_head(res, "bank", ["lake", "river"]) == (1, 1)


def test_best_head_takes_the_first_maximum():
    assert best_head(np.array([[0.1, 0.7], [0.7, 0.2]])) == (0, 1)
