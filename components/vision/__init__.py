"""The /vision page's UI sections and cache."""
