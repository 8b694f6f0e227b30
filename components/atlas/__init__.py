"""The /atlas page's UI sections and cache."""
