"""The /masks page's UI sections and cache."""
