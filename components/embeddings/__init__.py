"""The /embeddings page's UI sections and cache."""
