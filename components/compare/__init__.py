"""The Compare page (/compare) and the compare sections of /masks, /vision and /atlas: two models side by side."""
