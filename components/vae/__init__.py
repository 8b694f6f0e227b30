"""The /vae page's UI sections and cache."""
