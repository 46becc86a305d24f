#!/usr/bin/env python3
"""Build the tiny ONNX classifiers in tests/data/models/ used by headstart-onnx's
feature-tensor tests, in the shapes that timm/torchvision and Keras (tf2onnx)
exports take. Each is a few KB: random weights, 8x8 RGB input, 16 feature
channels, 5 classes.

    python3 -m venv /tmp/pyonnx && /tmp/pyonnx/bin/pip install onnx numpy onnxruntime
    /tmp/pyonnx/bin/python scripts/make_test_models.py            # writes the models
    /tmp/pyonnx/bin/python scripts/make_test_models.py --verify-exposed DIR

--verify-exposed checks, with onnxruntime, models that headstart-onnx's
`expose_output` wrote to DIR (see the ignored test `write_exposed_models`
in crates/onnx/src/features.rs): the new output must equal the expected
intermediate and feed the classifier (logits == features @ W + b).

Models (expected feature tensor, dim 16):
  a_torchvision.onnx   Conv-Relu-GlobalAveragePool-Flatten-Gemm(transB=1), batch `batch_size`
                       -> /Flatten_output_0
  b_fixed_batch.onnx   same, input fixed [1,3,8,8] -> /Flatten_output_0
  c_keras.onnx         Conv-Relu-ReduceMean(axes=[2,3],keepdims=0)-MatMul-Add-Softmax (tf2onnx style)
                       -> model/global_average_pooling2d/Mean:0
  d_reshape_gemm.onnx  Conv-Relu-GlobalAveragePool-Reshape([-1,16])-Gemm(transB=0) -> pool_flat
  e_no_head.onnx       Conv-Relu-GlobalAveragePool, no classifier: no feature tensor
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "models")

C_IN, H, W, FEAT, CLASSES = 3, 8, 8, 16, 5


def rng():
    return np.random.default_rng(20240601)


def conv_weights(r, prefix):
    w = (r.standard_normal((FEAT, C_IN, 3, 3)) * 0.3).astype(np.float32)
    b = (r.standard_normal(FEAT) * 0.1).astype(np.float32)
    return [
        numpy_helper.from_array(w, prefix + ".weight"),
        numpy_helper.from_array(b, prefix + ".bias"),
    ]


def fc(r, transposed):
    """Returns (weight, bias); weight is [classes, feat] when transposed else [feat, classes]."""
    w = (r.standard_normal((CLASSES, FEAT)) * 0.3).astype(np.float32)
    b = (r.standard_normal(CLASSES) * 0.1).astype(np.float32)
    return (w if transposed else w.T.copy()), b


def conv_relu(prefix, x, weights, out):
    """Conv(3x3, pad 1) + Relu nodes named /{prefix}/..., reading initializers `weights`."""
    conv_out = f"/{prefix}/Conv_output_0"
    return [
        helper.make_node(
            "Conv",
            [x, weights + ".weight", weights + ".bias"],
            [conv_out],
            name=f"/{prefix}/Conv",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[1, 1],
        ),
        helper.make_node("Relu", [conv_out], [out], name=f"/{prefix}/Relu"),
    ]


def finish(graph, producer, version, opset):
    model = helper.make_model(
        graph,
        producer_name=producer,
        producer_version=version,
        opset_imports=[helper.make_opsetid("", opset)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def torchvision_style(batch):
    """(a)/(b): Conv-Relu-GlobalAveragePool-Flatten-Gemm(transB=1), torch names."""
    r = rng()
    w, b = fc(r, transposed=True)
    inits = conv_weights(r, "features.0") + [
        numpy_helper.from_array(w, "fc.weight"),
        numpy_helper.from_array(b, "fc.bias"),
    ]
    nodes = conv_relu("features/features.0", "input", "features.0", "/features/features.1/Relu_output_0")
    nodes += [
        helper.make_node(
            "GlobalAveragePool",
            ["/features/features.1/Relu_output_0"],
            ["/avgpool/GlobalAveragePool_output_0"],
            name="/avgpool/GlobalAveragePool",
        ),
        helper.make_node(
            "Flatten",
            ["/avgpool/GlobalAveragePool_output_0"],
            ["/Flatten_output_0"],
            name="/Flatten",
            axis=1,
        ),
        helper.make_node(
            "Gemm",
            ["/Flatten_output_0", "fc.weight", "fc.bias"],
            ["logits"],
            name="/fc/Gemm",
            alpha=1.0,
            beta=1.0,
            transB=1,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, C_IN, H, W])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
        inits,
    )
    return finish(graph, "pytorch", "2.3.0", 17)


def keras_style():
    """(c): tf2onnx-style Conv-Relu-ReduceMean-MatMul-Add-Softmax, opset 13."""
    r = rng()
    w, b = fc(r, transposed=False)
    inits = conv_weights(r, "model/conv2d/Conv2D") + [
        numpy_helper.from_array(w, "model/dense/MatMul/ReadVariableOp:0"),
        numpy_helper.from_array(b, "model/dense/BiasAdd/ReadVariableOp:0"),
    ]
    nodes = [
        helper.make_node(
            "Conv",
            ["input_1", "model/conv2d/Conv2D.weight", "model/conv2d/Conv2D.bias"],
            ["model/conv2d/BiasAdd:0"],
            name="model/conv2d/BiasAdd",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["model/conv2d/BiasAdd:0"], ["model/conv2d/Relu:0"], name="model/conv2d/Relu"),
        helper.make_node(
            "ReduceMean",
            ["model/conv2d/Relu:0"],
            ["model/global_average_pooling2d/Mean:0"],
            name="model/global_average_pooling2d/Mean",
            axes=[2, 3],
            keepdims=0,
        ),
        helper.make_node(
            "MatMul",
            ["model/global_average_pooling2d/Mean:0", "model/dense/MatMul/ReadVariableOp:0"],
            ["model/dense/MatMul:0"],
            name="model/dense/MatMul",
        ),
        helper.make_node(
            "Add",
            ["model/dense/MatMul:0", "model/dense/BiasAdd/ReadVariableOp:0"],
            ["model/dense/BiasAdd:0"],
            name="model/dense/BiasAdd",
        ),
        helper.make_node("Softmax", ["model/dense/BiasAdd:0"], ["dense"], name="model/dense/Softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tf2onnx",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__12", C_IN, H, W])],
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__13", CLASSES])],
        inits,
    )
    return finish(graph, "tf2onnx", "1.16.1 15c810", 13)


def reshape_gemm():
    """(d): GlobalAveragePool-Reshape([-1, C])-Gemm(transB=0)."""
    r = rng()
    w, b = fc(r, transposed=False)
    inits = conv_weights(r, "conv") + [
        numpy_helper.from_array(np.array([-1, FEAT], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(w, "head.weight"),
        numpy_helper.from_array(b, "head.bias"),
    ]
    nodes = conv_relu("conv", "image", "conv", "act")
    nodes += [
        helper.make_node("GlobalAveragePool", ["act"], ["pool"], name="pool"),
        helper.make_node("Reshape", ["pool", "flat_shape"], ["pool_flat"], name="flatten"),
        helper.make_node("Gemm", ["pool_flat", "head.weight", "head.bias"], ["output"], name="head", transB=0),
    ]
    graph = helper.make_graph(
        nodes,
        "reshape_gemm",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", C_IN, H, W])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", CLASSES])],
        inits,
    )
    return finish(graph, "onnx.helper", onnx.__version__, 13)


def no_head():
    """(e): a trunk that ends in GlobalAveragePool; no classifier to find."""
    r = rng()
    inits = conv_weights(r, "conv")
    nodes = conv_relu("conv", "image", "conv", "act")
    nodes.append(helper.make_node("GlobalAveragePool", ["act"], ["pooled"], name="pool"))
    graph = helper.make_graph(
        nodes,
        "no_head",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", C_IN, H, W])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["N", FEAT, 1, 1])],
        inits,
    )
    return finish(graph, "onnx.helper", onnx.__version__, 13)


MODELS = {
    "a_torchvision.onnx": lambda: torchvision_style("batch_size"),
    "b_fixed_batch.onnx": lambda: torchvision_style(1),
    "c_keras.onnx": keras_style,
    "d_reshape_gemm.onnx": reshape_gemm,
    "e_no_head.onnx": no_head,
}

# Exposed feature tensor of each model, for --verify-exposed.
FEATURES = {
    "a_torchvision.onnx": ("/Flatten_output_0", "fc.weight", True),
    "b_fixed_batch.onnx": ("/Flatten_output_0", "fc.weight", True),
    "c_keras.onnx": ("model/global_average_pooling2d/Mean:0", "model/dense/MatMul/ReadVariableOp:0", False),
    "d_reshape_gemm.onnx": ("pool_flat", "head.weight", False),
}


def write_models(out):
    os.makedirs(out, exist_ok=True)
    for name, build in MODELS.items():
        model = build()
        path = os.path.join(out, name)
        onnx.save(model, path)
        onnx.checker.check_model(path, full_check=True)
        print(f"{path}: {os.path.getsize(path)} bytes, checker ok")


def reference_features(x, model):
    """Conv(3x3, pad 1) + Relu + global mean, in numpy, from the model's conv weights."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    w, b = inits[conv.input[1]], inits[conv.input[2]]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((x.shape[0], FEAT, H, W), np.float64)
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,oc->nohw", xp[:, :, i : i + H, j : j + W], w[:, :, i, j])
    y = np.maximum(y + b[None, :, None, None], 0)
    return y.mean(axis=(2, 3))


def verify_exposed(folder):
    import onnxruntime as ort

    ok = True
    for name, (tensor, weight, transposed) in FEATURES.items():
        path = os.path.join(folder, name)
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        outs = [o.name for o in sess.get_outputs()]
        inp = sess.get_inputs()[0]
        batch = 1 if name.startswith("b_") else 3
        x = np.random.default_rng(7).standard_normal((batch, C_IN, H, W)).astype(np.float32)
        results = dict(zip(outs, sess.run(None, {inp.name: x})))
        feats, logits = results[tensor], results[outs[0]]
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        w = inits[weight].T if transposed else inits[weight]
        bias = next(v for k, v in inits.items() if k != weight and v.shape == (CLASSES,))
        pre = feats @ w + bias
        if name.startswith("c_"):
            e = np.exp(pre - pre.max(axis=1, keepdims=True))
            pre = e / e.sum(axis=1, keepdims=True)
        shape = [o.shape for o in sess.get_outputs() if o.name == tensor][0]
        err_ref = float(np.abs(feats - reference_features(x, model)).max())
        err_head = float(np.abs(pre - logits).max())
        good = feats.shape == (batch, FEAT) and err_ref < 1e-5 and err_head < 1e-5
        ok &= good
        print(
            f"{name}: outputs {outs}, `{tensor}` declared {shape} got {feats.shape}, "
            f"max |features - numpy conv/relu/mean| = {err_ref:.2e}, "
            f"max |head(features) - {outs[0]}| = {err_head:.2e}: {'ok' if good else 'MISMATCH'}"
        )
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=OUT, help="output folder (default: tests/data/models)")
    parser.add_argument("--verify-exposed", metavar="DIR", help="check models written by expose_output")
    args = parser.parse_args()
    if args.verify_exposed:
        return 0 if verify_exposed(args.verify_exposed) else 1
    write_models(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
