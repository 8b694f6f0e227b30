"""The /attention page's UI sections and cache."""
