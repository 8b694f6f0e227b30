"""Can I trust this explanation? Deletion and insertion tests beside every explanation (Petsiuk et al. 2018;
ERASER's comprehensiveness and sufficiency, DeYoung et al. 2020).

Remove what an explanation ranks highest: does the explained value fall faster than when random parts are
removed? Each function returns a `Curves` (counts, deletion, insertion, random ± sd `[S+1]`, their areas,
comprehensiveness, sufficiency):

    ex = es.explain_similarity(enc, a, b)
    c = es.faithfulness.similarity(enc, ex, side="b", removal="delete", steps=10, seeds=5)   # the cosine
    rel = es.explain_image(vit, photo)
    c = es.faithfulness.image(vit, photo, rel, steps=14, seeds=3)                           # the probability
    many = es.faithfulness.image_methods(vit, rel)          # relevance vs raw [CLS] attention vs rollout
    ta = es.token_attribution(dec, text)
    c = es.faithfulness.next_token(dec, text, ta)                                          # log p(target)
    es.faithfulness.describe(c)                             # one sentence for a page
    es.faithfulness.table(c)                                # the curves as a CSV-ready DataFrame

Every curve costs one batched forward pass per step (all its states, random orders included, in one batch).
"""

from .curves import Curves, describe, step_counts, table
from .image import METHOD_LABELS, METHODS, attention_maps, image, image_methods
from .text import next_token, similarity

__all__ = [
    "Curves", "describe", "step_counts", "table", "similarity", "next_token", "image", "image_methods",
    "attention_maps", "METHODS", "METHOD_LABELS",
]
