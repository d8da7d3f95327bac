#!/usr/bin/env bash
# Export DeepSeek-R1-Distill-Qwen-1.5B to ONNX as a new model version.
#
#   deploy/triton/onnx_repository/export_onnx.sh /srv/weights/DeepSeek-R1-Distill-Qwen-1.5B [VERSION]
#
# Needs `pip install "optimum[exporters,onnxruntime]"` on the export machine
# (not a Sluicegate dependency). VERSION defaults to one above the newest one
# present; Triton keeps the last three loaded (see version_policy).
set -euo pipefail
weights=${1:?usage: export_onnx.sh WEIGHTS_DIR [VERSION]}
model_dir="$(cd "$(dirname "$0")" && pwd)/deepseek-r1-distill-onnx"
latest=$(find "$model_dir" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9]+' -printf '%f\n' | sort -n | tail -1)
version=${2:-$(( ${latest:-0} + 1 ))}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# No KV-cache inputs: one forward pass per call, so the Triton config stays
# small; use --task text-generation-with-past for a decoder that keeps state.
optimum-cli export onnx --model "$weights" --task text-generation --opset 17 "$out"
mkdir -p "$model_dir/$version"
cp "$out"/model.onnx* "$model_dir/$version/"
echo "exported version $version to $model_dir/$version"
