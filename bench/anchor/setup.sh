#!/usr/bin/env bash
# Throw-away venv for the tokenizer-extension anchor (issue 17, item 2): Continued-BPE from
# github.com/taidopurason/tokenizer-extension (arXiv 2512.03989), kept OUT of the project's .venv because it
# pins transformers 4.x (the project runs transformers 5.x) and pulls datasets/pandas/PyICU.
#
#   TOKEXT_SRC=/path/to/clone  bench/anchor/setup.sh      # TOKEXT_SRC: a clone of the tool (required)
#
# Env: TOKEXT_VENV  where the venv goes (default /tmp/venv-tokext, outside the repo);
#      TOKEXT_COMMIT the commit to install (default 15e9ed7f, the one the anchor figures were made with);
#      PYTHON        the interpreter (default python3; 3.11 was used).
# Installs bench/anchor/requirements.txt (every package pinned; PyICU builds against the system ICU, so
# libicu-dev, pkg-config and g++ must be present), then the tool itself with --no-deps, records the tool's
# commit in $TOKEXT_VENV/tokenizer-extension.commit (extend.py reports it) and smoke-tests the install.
# Safe to rerun: an existing venv is reused and pip skips what is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${TOKEXT_SRC:?set TOKEXT_SRC to a clone of taidopurason/tokenizer-extension}"
VENV=${TOKEXT_VENV:-/tmp/venv-tokext}
COMMIT=${TOKEXT_COMMIT:-15e9ed7f5f1e736790e977534d9613b1a8bfc82c}
PYTHON=${PYTHON:-python3}

# install from a clean export of the pinned commit, so local edits or another checkout in TOKEXT_SRC never leak in
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
git -C "$TOKEXT_SRC" archive "$COMMIT" | tar -x -C "$build"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q -r "$here/requirements.txt"
"$VENV/bin/pip" install -q --no-deps --force-reinstall "$build"
git -C "$TOKEXT_SRC" rev-parse "$COMMIT" > "$VENV/tokenizer-extension.commit"

# smoke test: learn 20 merges on two lines for GPT-2-style byte-level BPE and extend a tiny tokenizer
TQDM_DISABLE=1 TRANSFORMERS_VERBOSITY=error "$VENV/bin/python" - <<'PY'
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tokenizer_extension.extension import extend_tokenizer
from tokenizer_extension.train_vocab_extension import train_vocab_extension

alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
core = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok = PreTrainedTokenizerFast(tokenizer_object=core)
docs = ["영화 정말 재밌다 영화 최고", "정말 재밌는 영화였다"] * 5
learned = train_vocab_extension(tok, docs, extension_size=20)
before = len(tok(docs[0])["input_ids"])
# keep_added_token_positions=True as extend.py uses it (False crashes on a tokenizer without post-processor)
extend_tokenizer(tok, learned["vocab"], learned["merges"], n_tokens=20, keep_added_token_positions=True)
assert len(tok) == len(alphabet) + 20, len(tok)
assert len(tok(docs[0])["input_ids"]) < before
print(f"tokenizer-extension OK: +20 entries, {before} -> {len(tok(docs[0])['input_ids'])} tokens")
PY
echo "[anchor] venv ready: $VENV (tool commit $(cat "$VENV/tokenizer-extension.commit"))"
