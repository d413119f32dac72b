"""Deep item features from raw inputs: ``amrlite features image|text`` (optional extras).

* :class:`ImageEncoder` (extra ``images``) — pixels → CNN features, differentiable w.r.t. the
  pixels; :func:`extract_image_features` runs it over a folder of photos named by item id, an
  images table keyed by raw ids, or a native data set's ``images.csv``.
* :class:`TextEncoder` (extra ``text``) — texts → sentence embeddings; :func:`item_texts` /
  :func:`item_texts_by_id` build the item texts from an items table (no torch needed);
  :func:`extract_text_features`.
* :mod:`amrlite.features.inputs` — photo folders and tables keyed by raw id (no torch needed).

Importing this package does not import torch: the encoders do, when they are built, and a
missing extra is a one-line :class:`amrlite.AmrliteError` naming it.
"""
from .extract import extract_image_features, extract_text_features
from .image import ImageEncoder, ImageReadError, open_image
from .inputs import read_images_table, scan_photos
from .text import TextEncoder, default_template, item_texts, item_texts_by_id

__all__ = ["ImageEncoder", "ImageReadError", "TextEncoder", "default_template",
           "extract_image_features", "extract_text_features", "item_texts", "item_texts_by_id",
           "open_image", "read_images_table", "scan_photos"]
