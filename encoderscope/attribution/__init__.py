"""Attribution: why a model produced its output.

One module per question, all computed with the model's own forward and backward passes:

- `similarity`: why two texts are close (`explain_similarity`): an exact token-pair decomposition of the cosine
  for mean-pooled encoders, integrated gradients for any pooling;
- `query_key`: the query and key vectors behind one head's attention (`query_key`), exact to the model's weights;
- `lens`: the logit lens of a causal decoder (`logit_lens`);
- `next_token`: which input tokens raise the decoder's next-token log-probability (`token_attribution`);
- `image`: which patches made an image classifier or CLIP/SigLIP give its score (`explain_image`, Chefer et al. 2021);
- `integrated`, `inputs`: the shared integrated-gradients engine and input handling (caps, notes, baselines).

The public names are exported lazily by `encoderscope/__init__.py`; `import encoderscope` stays torch-free.
"""
