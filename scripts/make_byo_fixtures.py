#!/usr/bin/env python3
"""Tiny random-weight exports of the backbones the README's "Bring your own ONNX
backbone" recipe covers, and their features as the frameworks compute them, for
tests/byo.rs (which checks `headstart extract --features auto` against them
without torch).

    python3 -m venv /work/venvs/torch
    /work/venvs/torch/bin/pip install torch timm transformers onnx onnxscript onnxruntime pillow pyarrow
    cargo build --release
    HEADSTART_HOME=... /work/venvs/torch/bin/python scripts/make_byo_fixtures.py

Models (random weights, fixed seeds; every parameter moved by N(0, 0.1^2) so that
no two LayerNorms share weights, LayerScale is not ~0 and a wrong tensor shows):
  vit       timm `vit_small_patch14_dinov2` (DINOv2's ViT: patch 14, LayerScale),
            depth 2, width 32, 224 px, no classifier as DINOv2 ships:
            reference = timm's pre-logits, the CLS token after the final norm.
  dinov2-hf transformers `Dinov2Model`, same sizes: outputs last_hidden_state and
            pooler_output; reference = pooler_output (CLS after the final norm).
  clip      transformers `CLIPVisionModelWithProjection` (patch 16, width 32,
            2 layers, projection 16): outputs image_embeds and last_hidden_state;
            reference = vision_model's pooler_output, post_layernorm of the CLS
            token, the input of the projection (CLIP's linear probes use it:
            Radford et al. 2021, appendix A.3).
  convnext  timm `convnext_atto` with depths 1,1,1,1, widths 8,16,24,32 and a
            10-class head: reference = timm's pre-logits (pooled, head norm,
            flattened).
Each is exported twice: `NAME.onnx` with torch.onnx.export's default exporter
(dynamo, torch >= 2.9) and `NAME-torchscript.onnx` with `dynamo=False` (the
default before), as the README shows.

The inputs are headstart's own tensors: an identity model (input -> Flatten) run
through `headstart extract` with each preset gives exactly the floats headstart
feeds the backbone, and the framework computes the reference features from
those, so the check covers the feature-tensor choice and the graph, not resize
arithmetic. The script then runs `headstart extract --features auto` on every
export and prints the max abs difference to the reference, and, for
information, how far the frameworks' own preprocessing (timm's transforms,
CLIPImageProcessor) is from headstart's preset.

Writes tests/data/byo/*.onnx and tests/data/byo/reference.json.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
SIZE = 224

# Cache key (class/file) -> image in the repository.
IMAGES = {
    "photo/chelsea.png": "tests/data/chelsea.png",
    "photo/coffee.png": "tests/data/coffee.png",
    "photo/chelsea-progressive.jpg": "tests/data/chelsea-progressive.jpg",
    "ankle-boot/00000.png": "data/fashion-mnist-mini/train/ankle-boot/00000.png",
    "bag/00023.png": "data/fashion-mnist-mini/train/bag/00023.png",
}

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))

# Preprocessing of each model: headstart's flags, and the framework's own
# transform for the information check.
RECIPES = {
    "dinov2": {"args": ["--preset", "dinov2"], "timm": IMAGENET},
    "clip": {"args": ["--preset", "clip"], "clip": True},
    "imagenet-bicubic": {"args": ["--preset", "imagenet", "--filter", "bicubic"], "timm": IMAGENET},
}


def perturb(model, seed):
    """Moves every parameter by N(0, 0.1^2): random, and no two alike."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def build():
    """(name, module, reference function, recipe, framework description)."""
    import timm
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        Dinov2Config,
        Dinov2Model,
    )

    torch.manual_seed(0)
    vit = timm.create_model(
        "vit_small_patch14_dinov2", pretrained=False, img_size=SIZE, embed_dim=32, depth=2, num_heads=2
    )
    assert vit.num_classes == 0, "DINOv2 in timm ships without a classifier"
    perturb(vit, 1)

    torch.manual_seed(0)
    dino = Dinov2Model(
        Dinov2Config(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            image_size=SIZE, patch_size=14,
        )
    )
    perturb(dino, 2)

    torch.manual_seed(0)
    clip = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=SIZE, patch_size=16, projection_dim=16,
        )
    )
    perturb(clip, 3)

    torch.manual_seed(0)
    convnext = timm.create_model(
        "convnext_atto", pretrained=False, depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), num_classes=10
    )
    perturb(convnext, 4)

    def timm_pre_logits(m):
        return lambda x: m.forward_head(m.forward_features(x), pre_logits=True)

    return [
        ("vit", vit, timm_pre_logits(vit), "dinov2",
         "timm vit_small_patch14_dinov2(img_size=224, embed_dim=32, depth=2, num_heads=2): forward_head(pre_logits=True)"),
        ("dinov2-hf", dino, lambda x: dino(pixel_values=x).pooler_output, "dinov2",
         "transformers Dinov2Model(hidden_size=32, 2 layers, patch 14): pooler_output"),
        ("clip", clip, lambda x: clip.vision_model(pixel_values=x).pooler_output, "clip",
         "transformers CLIPVisionModelWithProjection(hidden_size=32, 2 layers, patch 16, projection 16): vision_model pooler_output"),
        ("convnext", convnext, timm_pre_logits(convnext), "imagenet-bicubic",
         "timm convnext_atto(depths=(1,1,1,1), dims=(8,16,24,32), num_classes=10): forward_head(pre_logits=True)"),
    ]


def export(model, path, dynamo):
    """The README's export: batch dimension free, weights inside the file."""
    x = torch.randn(2, 3, SIZE, SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(
                model, (x,), path, dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False
            )
        else:
            torch.onnx.export(
                model, (x,), path, dynamo=False, input_names=["image"],
                dynamic_axes={"image": {0: "batch"}}, opset_version=17,
            )
    onnx.checker.check_model(path)


def identity_model(path):
    """image [N, 3, 224, 224] -> Flatten -> pixels [N, 3*224*224]."""
    g = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["pixels"], axis=1)],
        "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3 * SIZE * SIZE])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def extract(headstart, images, cache, model, args):
    """`headstart extract` -> {key: float32 vector}; fails loudly."""
    cmd = [headstart, "-q", "extract", images, "--out", cache, "--json", "--model", model, "--features", "auto", *args]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    parts = sorted(glob.glob(os.path.join(cache, "parts", "*.parquet")))
    table = pa.concat_tables(pq.read_table(p, columns=["path", "view", "feature"]) for p in parts)
    rows = {}
    for path, view, feature in zip(*(table[c].to_pylist() for c in ("path", "view", "feature"))):
        assert view == "original" and path not in rows, (path, view)
        rows[path] = np.asarray(feature, dtype=np.float32)
    assert sorted(rows) == sorted(IMAGES), sorted(rows)
    return rows


def framework_tensor(recipe, path):
    """The framework's own preprocessing of one image, [3, 224, 224]."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    if recipe.get("clip"):
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor()(images=img, return_tensors="pt")["pixel_values"][0]
    import timm.data

    mean, std = recipe["timm"]
    t = timm.data.create_transform(
        input_size=(3, SIZE, SIZE), interpolation="bicubic", mean=mean, std=std, crop_pct=0.875
    )
    return t(img)


def to_json(value, indent=""):
    """Indented JSON with each list of numbers on one line."""
    if isinstance(value, dict):
        inner = indent + " "
        items = [f"{inner}{json.dumps(k)}: {to_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and not all(isinstance(v, (int, float)) for v in value):
        inner = indent + " "
        return "[\n" + ",\n".join(inner + to_json(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--headstart", default=os.path.join(REPO, "target/release/headstart"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests/data/byo"))
    opts = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    os.makedirs(opts.out, exist_ok=True)

    work = tempfile.mkdtemp(prefix="byo-")
    try:
        images = os.path.join(work, "images")
        for key, src in IMAGES.items():
            os.makedirs(os.path.join(images, os.path.dirname(key)), exist_ok=True)
            shutil.copy(os.path.join(REPO, src), os.path.join(images, key))

        # headstart's input tensors, per recipe.
        ident = os.path.join(work, "identity.onnx")
        identity_model(ident)
        tensors = {}
        for name, recipe in RECIPES.items():
            rows = extract(opts.headstart, images, os.path.join(work, f"pixels-{name}"), ident, recipe["args"])
            tensors[name] = {k: v.reshape(3, SIZE, SIZE) for k, v in rows.items()}

        print("framework's own preprocessing vs headstart's (tensor diffs; per-channel mean of framework - headstart)")
        for name, recipe in RECIPES.items():
            for key, src in IMAGES.items():
                ours = tensors[name][key]
                theirs = framework_tensor(recipe, os.path.join(REPO, src)).numpy()
                d = theirs - ours
                bias = ", ".join(f"{b:+.4f}" for b in d.mean(axis=(1, 2)))
                print(f"  {name:17} {key:30} max {np.abs(d).max():.3f} mean {np.abs(d).mean():.4f} channel bias {bias}")

        reference = {
            "generator": "scripts/make_byo_fixtures.py",
            "versions": {
                m.__name__: m.__version__
                for m in [torch, __import__("timm"), __import__("transformers"), onnx]
            },
            "images": IMAGES,
            "models": {},
        }
        worst = {}
        for name, module, features, recipe, source in build():
            batch = torch.from_numpy(np.stack([tensors[recipe][k] for k in IMAGES]))
            with torch.no_grad():
                ref = features(batch).numpy().astype(np.float32)
            assert ref.ndim == 2 and ref.shape[0] == len(IMAGES), ref.shape
            for exporter, dynamo in [("", True), ("-torchscript", False)]:
                file = f"{name}{exporter}.onnx"
                path = os.path.join(opts.out, file)
                export(module, path, dynamo)
                got = extract(
                    opts.headstart, images, os.path.join(work, f"cache-{name}{exporter}"), path,
                    RECIPES[recipe]["args"],
                )
                diff = max(float(np.abs(got[k] - ref[i]).max()) for i, k in enumerate(IMAGES))
                worst[file] = diff
                reference["models"][file] = {
                    "framework": source,
                    "exporter": "torch.onnx.export(dynamo=False)" if exporter else "torch.onnx.export (dynamo)",
                    "args": RECIPES[recipe]["args"],
                    "dim": int(ref.shape[1]),
                    "max_abs_diff_when_made": diff,
                    "features": {k: [float(f"{v:.9g}") for v in ref[i]] for i, k in enumerate(IMAGES)},
                }
                print(f"{file:28} {os.path.getsize(path):>8} bytes  dim {ref.shape[1]}  "
                      f"headstart --features auto vs {source.split('(')[0].strip()}: max abs diff {diff:.2e}")
        with open(os.path.join(opts.out, "reference.json"), "w") as f:
            f.write(to_json(reference) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bad = {k: v for k, v in worst.items() if not v < 1e-4}
    if bad:
        sys.exit(f"headstart's features differ from the framework's: {bad}")


if __name__ == "__main__":
    main()
