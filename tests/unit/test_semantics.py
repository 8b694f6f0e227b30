"""What the attention transformations mean, on tiny hand-built results with hand-computed answers.

Each expected array is written out literally: a bug that swaps rows and columns, sums where it should
average, forgets to renormalise or groups pieces across sentences gives different numbers.
"""

import numpy as np
import pytest

import encoderscope as es
from encoderscope.attention_maps import pair_filter

F, T_ = False, True


def _result(weights, tokens, special, word_ids=None, sequence_ids=None, b_start=None):
    """An AttentionResult from literal arrays; weights `[L, H, T, T]`."""
    return es.AttentionResult(
        tokens=tokens,
        weights=np.asarray(weights, np.float32),
        special=np.asarray(special, bool),
        word_ids=word_ids,
        sequence_ids=sequence_ids,
        sentence_b_start=b_start,
    )


# [CLS] play ##ing [SEP]: one word in two pieces. Head 0 is arbitrary, head 1 attends to the previous token.
PIECES = dict(
    tokens=["[CLS]", "play", "##ing", "[SEP]"],
    special=[T_, F, F, T_],
    word_ids=(None, 0, 0, None),
    sequence_ids=(None, 0, 0, None),
)
HEAD_0 = [
    [0.1, 0.2, 0.3, 0.4],
    [0.4, 0.3, 0.2, 0.1],
    [0.2, 0.2, 0.2, 0.4],
    [0.25, 0.25, 0.25, 0.25],
]
HEAD_1 = [
    [1, 0, 0, 0],
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
]


def test_merge_word_pieces_averages_query_rows_and_sums_key_columns():
    merged = es.merge_word_pieces(_result([[HEAD_0, HEAD_1]], **PIECES))
    assert merged.tokens == ["[CLS]", "playing", "[SEP]"]
    assert merged.special.tolist() == [True, False, True]
    # key columns: play + ##ing summed; query row "playing": mean of the two pieces' rows
    np.testing.assert_allclose(
        merged.weights[0, 0],
        [
            [0.1, 0.5, 0.4],
            [0.3, 0.45, 0.25],  # ([0.4, 0.5, 0.1] + [0.2, 0.4, 0.4]) / 2
            [0.25, 0.5, 0.25],
        ],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        merged.weights[0, 1],
        [
            [1, 0, 0],
            [0.5, 0.5, 0],  # "play" looked at [CLS], "##ing" at "play" (now inside the word itself)
            [0, 1, 0],
        ],
        atol=1e-6,
    )


def test_merge_word_pieces_keeps_sentences_apart():
    # a ##b | c ##d with no separator token between the sentences (as a decoder's tokenizer may join a pair):
    # word ids restart at 0 in sentence B, so only the sentence id keeps "ab" and "cd" apart.
    res = _result(
        [[np.full((4, 4), 0.25)]],
        tokens=["a", "##b", "c", "##d"],
        special=[F, F, F, F],
        word_ids=(0, 0, 0, 0),
        sequence_ids=(0, 0, 1, 1),
        b_start=2,
    )
    merged = es.merge_word_pieces(res)
    assert merged.tokens == ["ab", "cd"]
    assert merged.sentence_b_start == 1 and merged.sequence_ids == (0, 1)
    np.testing.assert_allclose(merged.weights[0, 0], [[0.5, 0.5], [0.5, 0.5]], atol=1e-6)


def test_merge_word_pieces_without_pieces_changes_nothing():
    res = _result([[np.eye(3)]], ["[CLS]", "bank", "[SEP]"], [T_, F, T_], (None, 0, None), (None, 0, None))
    merged = es.merge_word_pieces(res)
    assert merged.tokens == res.tokens
    np.testing.assert_array_equal(merged.weights, res.weights)


def test_drop_special_removes_rows_and_columns_then_renormalises():
    weights = [
        [0.4, 0.3, 0.2, 0.1],
        [0.5, 0.25, 0.125, 0.125],
        [0.2, 0.2, 0.6, 0.0],
        [0.1, 0.1, 0.1, 0.7],
    ]
    dropped = es.drop_special(_result([[weights]], ["[CLS]", "a", "b", "[SEP]"], [T_, F, F, T_]))
    assert dropped.tokens == ["a", "b"]
    assert not dropped.special.any()
    # row "a": [0.25, 0.125] / 0.375; row "b": [0.2, 0.6] / 0.8
    np.testing.assert_allclose(dropped.weights[0, 0], [[2 / 3, 1 / 3], [0.25, 0.75]], atol=1e-6)


def test_drop_special_row_with_all_mass_on_special_tokens_stays_zero():
    weights = [
        [1, 0, 0, 0],
        [0.5, 0, 0, 0.5],  # "a" looks only at [CLS] and [SEP]: nothing is left to renormalise
        [0, 0.5, 0.5, 0],
        [0, 0, 0, 1],
    ]
    dropped = es.drop_special(_result([[weights]], ["[CLS]", "a", "b", "[SEP]"], [T_, F, F, T_]))
    np.testing.assert_array_equal(dropped.weights[0, 0], [[0, 0], [0.5, 0.5]])
    assert np.isfinite(dropped.weights).all()


def test_drop_special_moves_the_sentence_b_start():
    # [CLS] a [SEP] b [SEP] -> a b; B starts at index 1 afterwards, not 3.
    res = _result(
        [[np.full((5, 5), 0.2)]],
        ["[CLS]", "a", "[SEP]", "b", "[SEP]"],
        [T_, F, T_, F, T_],
        (None, 0, None, 0, None),
        (None, 0, None, 1, None),
        b_start=3,
    )
    dropped = es.drop_special(res)
    assert dropped.tokens == ["a", "b"] and dropped.sentence_b_start == 1
    np.testing.assert_allclose(dropped.weights[0, 0], [[0.5, 0.5], [0.5, 0.5]], atol=1e-6)


# Two layers, two heads, three tokens; no matrix is symmetric, so a row/column mix-up shows.
FOCUS = [
    [
        [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]],
        [[0.2, 0.2, 0.6], [0.0, 0.1, 0.9], [0.3, 0.3, 0.4]],
    ],
    [
        [[1.0, 0.0, 0.0], [0.7, 0.2, 0.1], [0.0, 1.0, 0.0]],
        [[0.5, 0.5, 0.0], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]],
    ],
]


def test_token_focus_is_the_query_row_averaged_over_heads():
    res = _result(FOCUS, ["a", "b", "c"], [F, F, F])
    # token 1's rows: layer 0 heads [0.2, 0.5, 0.3] and [0.0, 0.1, 0.9]; layer 1 [0.7, 0.2, 0.1] and [0.3, 0.3, 0.4]
    np.testing.assert_allclose(es.token_focus(res, 1), [[0.1, 0.3, 0.6], [0.5, 0.25, 0.25]], atol=1e-6)


def test_token_focus_of_one_head():
    res = _result(FOCUS, ["a", "b", "c"], [F, F, F])
    np.testing.assert_allclose(es.token_focus(res, 2, head=1), [[0.3, 0.3, 0.4], [0.2, 0.2, 0.6]], atol=1e-6)
    with pytest.raises(IndexError):
        es.token_focus(res, 3)


# [CLS] a [SEP] b c [SEP]: sentence A = token 1, sentence B = tokens 3 and 4.
PAIR = dict(
    tokens=["[CLS]", "a", "[SEP]", "b", "c", "[SEP]"],
    special=[T_, F, T_, F, F, T_],
    word_ids=(None, 0, None, 0, 1, None),
    sequence_ids=(None, 0, None, 1, 1, None),
    b_start=3,
)


def test_pair_filter_a_to_b_keeps_queries_in_a_and_keys_in_b():
    res = _result([[np.full((6, 6), 1 / 6)]], **PAIR)
    expected = np.zeros((6, 6), bool)
    expected[1, 3] = expected[1, 4] = True
    np.testing.assert_array_equal(pair_filter(res, "A→B"), expected)


def test_pair_filter_b_to_a_keeps_queries_in_b_and_keys_in_a():
    res = _result([[np.full((6, 6), 1 / 6)]], **PAIR)
    expected = np.zeros((6, 6), bool)
    expected[3, 1] = expected[4, 1] = True
    np.testing.assert_array_equal(pair_filter(res, "B→A"), expected)


def test_pair_filter_all_and_single_sentence_keep_everything():
    res = _result([[np.full((6, 6), 1 / 6)]], **PAIR)
    assert pair_filter(res, "all").all()
    single = _result([[np.eye(3)]], ["[CLS]", "a", "[SEP]"], [T_, F, T_], (None, 0, None), (None, 0, None))
    assert pair_filter(single, "A→B").all() and pair_filter(single, "A→B").shape == (3, 3)
