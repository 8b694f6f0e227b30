"""The one base class for errors whose message is written for the person using Encoderscope.

Every domain error subclasses :class:`UserFacingError` (a ValueError, so existing `except ValueError` keeps
working): ModelLoadError (model_kinds, re-exported by models), VAEError (vae), TAESDError (taesd), ImageError (images), UploadError
(tabular). The UI catches this one class and shows `str(err)` as it is; anything else is a bug.
"""

from __future__ import annotations


class UserFacingError(ValueError):
    """Bad input or an unusable model/file; `str(err)` is a complete explanation for the end user."""
