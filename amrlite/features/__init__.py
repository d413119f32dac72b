"""Deep item features from raw inputs: ``amrlite features image|text`` (optional extras).

* :class:`ImageEncoder` (extra ``images``) — pixels → CNN features, differentiable w.r.t. the
  pixels; :func:`extract_image_features` runs it over a data set's ``images.csv``.
* :class:`TextEncoder` (extra ``text``) — texts → sentence embeddings; :func:`item_texts` builds
  the item texts from ``items.csv`` (no torch needed); :func:`extract_text_features`.

Importing this package does not import torch: the encoders do, when they are built, and a
missing extra is a one-line :class:`amrlite.AmrliteError` naming it.
"""
from .extract import extract_image_features, extract_text_features
from .image import ImageEncoder, ImageReadError, open_image
from .text import TextEncoder, default_template, item_texts

__all__ = ["ImageEncoder", "ImageReadError", "TextEncoder", "default_template",
           "extract_image_features", "extract_text_features", "item_texts", "open_image"]
