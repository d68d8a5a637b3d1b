#!/usr/bin/env bash
# One-step set-up on a fresh Debian 12 machine with Python 3.11:
#   1. Debian packages (KenLM's build dependencies) when they are missing,
#   2. a virtual environment .venv with the pinned Python dependencies and this package,
#   3. KenLM's lmplz / build_binary / query, built from the kenlm sdist on PyPI into .venv/bin (the build is
#      kept in ~/.cache/vocab-expansion/ and copied by the next checkout's set-up),
#   4. the SLURM profile linked where `snakemake --profile slurm` finds it (~/.config/snakemake/slurm).
# Safe to rerun: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=${VENV:-.venv}
KENLM_VERSION=0.3.0

debs=(cmake build-essential libboost-program-options-dev libboost-system-dev libboost-thread-dev
      libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev libeigen3-dev)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q --no-compile -r requirements.txt
  "$VENV/bin/python" -m pip install -q --no-compile --no-deps -e .
  # bytecode for every installed module, on all cores (pip compiles one file at a time: 91 s of set-up against 74).
  # Without it a shell that sets PYTHONDONTWRITEBYTECODE (CI's does) compiles torch and transformers from source in
  # every job: 7.5 s instead of 3.1 s to load a tokenizer, in each of the demo's ~100 jobs
  "$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
  echo "$want" > "$stamp"
fi

# KenLM's binaries are built once per machine and kept beside pip's cache (a fresh checkout copies them)
kenlm_cache="${XDG_CACHE_HOME:-$HOME/.cache}/vocab-expansion/kenlm-$KENLM_VERSION-$(uname -m)-$(. /etc/os-release && echo "$ID$VERSION_ID")"
if [ ! -x "$VENV/bin/lmplz" ] || [ ! -x "$VENV/bin/build_binary" ]; then
  if [ ! -x "$kenlm_cache/lmplz" ] || [ ! -x "$kenlm_cache/build_binary" ] || [ ! -x "$kenlm_cache/query" ]; then
    echo "[setup] building KenLM $KENLM_VERSION (lmplz, build_binary, query)"
    tmp=$(mktemp -d)
    "$VENV/bin/python" -m pip download -q --no-deps --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$tmp"
    tar xzf "$tmp/kenlm-$KENLM_VERSION.tar.gz" -C "$tmp"
    cmake -S "$tmp/kenlm-$KENLM_VERSION" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" 2>&1 \
      || { cat "$tmp/cmake.log"; exit 1; }
    make -C "$tmp/build" -j"$(nproc)" lmplz build_binary query >"$tmp/make.log" 2>&1 \
      || { tail -50 "$tmp/make.log"; exit 1; }
    mkdir -p "$kenlm_cache" && cp "$tmp/build/bin/lmplz" "$tmp/build/bin/build_binary" "$tmp/build/bin/query" "$kenlm_cache/"
    rm -rf "$tmp"
  fi
  cp "$kenlm_cache/lmplz" "$kenlm_cache/build_binary" "$kenlm_cache/query" "$VENV/bin/"
fi
bash profiles/slurm/install.sh || echo "[setup] could not link the SLURM profile; use --profile profiles/slurm" >&2
echo "[setup] ready: $VENV (snakemake, lmplz, build_binary)"
