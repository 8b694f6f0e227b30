"""Attribution: why a model produced its output."""
