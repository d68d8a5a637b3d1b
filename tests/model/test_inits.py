"""The initialisation registries: the schema's enums list exactly the registered inits, the README's toy init
works as written, random and mean_all rows are what they say (seeded draws, the mean of every old row), and
tokens without base pieces take the mean of the old rows. focus and distill: test_focus.py, test_distill.py."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch

from tests.families import FAMILIES
from vocab_expansion import config as configlib
from vocab_expansion.errors import ConfigError
from vocab_expansion.model.expand import (
    INPUT_INITS,
    OUTPUT_INITS,
    ExpandConfig,
    InitRows,
    expand_checkpoint,
    expand_embeddings,
    register,
)
from vocab_expansion.model.inits import INIT_OPTIONS

REGISTRIES = {"input": INPUT_INITS, "output": OUTPUT_INITS}
# step 2 of the README example: the name added to the enum of model.init.output
README_ENUM = ("enum: [first, mean, random, mean_all]", "enum: [first, mean, random, mean_all, zeros]")


def unlisted() -> dict[str, set[str]]:
    """Per kind: the names registered but missing from the schema's enum, and those listed but not registered."""
    props = configlib.subschema("model.init")["properties"]
    return {kind: set(registry) ^ set(props[kind]["enum"]) for kind, registry in REGISTRIES.items()}


def _clear_schema_caches() -> None:
    """Forget any parse of the schema the config module keeps (it reads SCHEMA_PATH once per process)."""
    for obj in vars(configlib).values():
        if callable(getattr(obj, "cache_clear", None)):
            obj.cache_clear()


@pytest.fixture
def schema_copy(tmp_path, monkeypatch):
    """A copy of the schema that the config module reads instead, until the test ends; the test edits it."""
    copy_path = tmp_path / "config.schema.yaml"
    copy_path.write_text(configlib.SCHEMA_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(configlib, "SCHEMA_PATH", copy_path)
    _clear_schema_caches()
    yield copy_path
    monkeypatch.undo()
    _clear_schema_caches()


@pytest.fixture
def registries():
    """The registries as they were, restored after a test that registers an init of its own."""
    saved = {kind: dict(registry) for kind, registry in REGISTRIES.items()}
    yield
    for kind, registry in REGISTRIES.items():
        registry.clear()
        registry.update(saved[kind])


def test_schema_enums_list_exactly_the_registered_inits():
    assert unlisted() == {"input": set(), "output": set()}
    for kind, registry in REGISTRIES.items():  # and the schema's default is one of them
        assert configlib.section("model.init")[kind] in registry


@pytest.mark.parametrize("family", ["llama", "phi"])  # phi: an lm_head bias, given to the init as 1-D rows
def test_toy_init_from_the_readme(registries, schema_copy, tiny_case, family):
    # step 1: the function, registered for the output rows
    @register("zeros", "output")
    def zeros(rows: InitRows) -> torch.Tensor:
        """All-zero rows: every new token starts at logit 0 (bias 0 too)."""
        return rows.old.new_zeros((len(rows.pieces), *rows.old.shape[1:]))

    # forgetting the enum entry fails loudly: the registry test, and any config that picks the init
    assert unlisted() == {"input": set(), "output": {"zeros"}}
    with pytest.raises(ConfigError, match=r"model\.init\.output: 'zeros' is not one of"):
        ExpandConfig.from_config({"output": "zeros"}, pad_to_multiple_of=64, seed=0)

    # step 2: the enum entry (in a copy of the schema)
    text = schema_copy.read_text(encoding="utf-8")
    assert text.count(README_ENUM[0]) == 1
    schema_copy.write_text(text.replace(*README_ENUM), encoding="utf-8")
    _clear_schema_caches()
    assert unlisted() == {"input": set(), "output": set()}

    # step 3: a config picks it
    case = tiny_case(family)
    ref = copy.deepcopy(case.model)
    cfg = ExpandConfig.from_config({"output": "zeros"}, pad_to_multiple_of=64, seed=0)
    expand_embeddings(case.model, case.pieces, cfg)
    n_old, n = case.base.size, len(case.pieces)
    head, ref_in = case.model.get_output_embeddings(), ref.get_input_embeddings().weight
    assert torch.count_nonzero(head.weight[n_old:n_old + n]) == 0
    assert torch.equal(head.weight[:n_old], ref.get_output_embeddings().weight)
    for i, ids in enumerate(case.pieces):  # the input rows keep their own init (mean)
        assert torch.equal(case.model.get_input_embeddings().weight[n_old + i], ref_in[ids].mean(dim=0))
    if family == "phi":
        assert torch.count_nonzero(head.bias[n_old:n_old + n]) == 0
    ids = torch.tensor([[1, n_old, n_old + 1]])
    with torch.no_grad():
        logits = case.model(ids).logits[0, :, n_old:n_old + n]
    assert torch.count_nonzero(logits) == 0


def test_random_rows_are_seeded_draws(tiny_case):
    case = tiny_case("phi")
    ref = copy.deepcopy(case.model).get_output_embeddings()
    expand_embeddings(case.model, case.pieces, ExpandConfig.from_config({"output": "random"}, pad_to_multiple_of=64,
                                                                        seed=3))
    n_old, n = case.base.size, len(case.pieces)
    gen, old = torch.Generator().manual_seed(3), ref.weight
    want = torch.stack([torch.randn(old.shape[1], generator=gen) * old.std() for _ in range(n)])
    head = case.model.get_output_embeddings()
    assert torch.equal(head.weight[n_old:n_old + n], want)
    assert torch.equal(head.bias[n_old:n_old + n], ref.bias.mean().repeat(n))  # a bias takes the mean, no noise


@pytest.mark.parametrize("output_init", sorted(OUTPUT_INITS))
def test_tokens_without_pieces_take_the_mean_of_the_old_rows(tiny_case, output_init):
    case = tiny_case("phi")
    ref = copy.deepcopy(case.model)
    pieces = [[], *case.pieces, []]
    cfg = ExpandConfig.from_config({"output": output_init}, pad_to_multiple_of=None, seed=0)
    info = expand_embeddings(case.model, pieces, cfg)
    n_old, last = case.base.size, case.base.size + len(pieces) - 1
    assert info["fallback_rows"] == 2 and info["padding_rows"] == 0
    for new, old in ((case.model.get_input_embeddings(), ref.get_input_embeddings()),
                     (case.model.get_output_embeddings(), ref.get_output_embeddings())):
        for row in (n_old, last):
            assert torch.equal(new.weight[row], old.weight.mean(dim=0))
    bias, ref_bias = case.model.get_output_embeddings().bias, ref.get_output_embeddings().bias
    assert torch.equal(bias[n_old], ref_bias.mean()) and torch.equal(bias[last], ref_bias.mean())


def test_random_input_rows_are_seeded_draws_of_their_own(tiny_case):
    """Input rows draw from seed + 1: random input and output rows are two draws, not one copied."""
    case = tiny_case("llama")
    ref = copy.deepcopy(case.model)
    expand_embeddings(case.model, case.pieces, ExpandConfig.from_config({"input": "random", "output": "random"},
                                                                        pad_to_multiple_of=None, seed=3))
    n_old, n = case.base.size, len(case.pieces)
    old = ref.get_input_embeddings().weight
    gen = torch.Generator().manual_seed(4)
    want = torch.stack([torch.randn(old.shape[1], generator=gen) * old.std() for _ in range(n)])
    w_in, w_out = case.model.get_input_embeddings().weight, case.model.get_output_embeddings().weight
    assert torch.equal(w_in[n_old:], want) and torch.equal(w_in[:n_old], old)
    assert not torch.equal(w_in[n_old:], w_out[n_old:])


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_mean_all_rows_are_the_mean_of_every_old_row(tiny_case, noise):
    case = tiny_case("phi")  # phi: the bias takes the mean old bias, never noise
    ref = copy.deepcopy(case.model).get_output_embeddings()
    cfg = ExpandConfig.from_config({"output": "mean_all", "noise": noise}, pad_to_multiple_of=None, seed=5)
    expand_embeddings(case.model, case.pieces, cfg)
    n_old, n = case.base.size, len(case.pieces)
    head, old = case.model.get_output_embeddings(), ref.weight
    want = old.mean(dim=0).expand(n, -1)
    if noise:
        gen = torch.Generator().manual_seed(5)
        want = want + torch.stack([torch.randn(old.shape[1], generator=gen) * (noise * old.std()) for _ in range(n)])
    assert torch.equal(head.weight[n_old:], want)
    assert torch.equal(head.weight[:n_old], old) and torch.equal(head.bias[:n_old], ref.bias)
    assert torch.equal(head.bias[n_old:], ref.bias.mean().repeat(n))
    assert cfg.record() == {"input_init": "mean", "output_init": "mean_all",
                            "init_options": {"noise": noise, "shift": 0.0}}


def test_expansion_records_each_init_and_the_keys_it_reads():
    for name, keys in INIT_OPTIONS.items():
        assert set(keys) <= set(configlib.section("model.init")), name
    cfg = ExpandConfig.from_config({"input": "distill", "output": "first", "distill": {"steps": 1}},
                                   pad_to_multiple_of=None, seed=0)
    rec = cfg.record()
    assert rec["input_init"] == "distill" and rec["output_init"] == "first"
    assert list(rec["init_options"]) == ["distill"] and rec["init_options"]["distill"]["steps"] == 1
    assert ExpandConfig("focus", "mean_all", None, 0).record()["init_options"] == {
        "focus": configlib.section("model.init")["focus"], "noise": 0.0, "shift": 0.0}


@pytest.mark.parametrize("init", ["focus", "distill"])
def test_inits_that_read_text_say_so_without_a_context(tiny_case, init):
    case = tiny_case("llama")
    with pytest.raises(ConfigError, match=rf"model\.init {init} needs"):
        expand_embeddings(case.model, case.pieces, ExpandConfig.from_config({"input": init}, pad_to_multiple_of=None,
                                                                            seed=0))


def test_expand_checkpoint_gives_focus_the_text_and_records_it(text_case, shared, tmp_path):
    tc = text_case("llama")
    base_dir = tmp_path / "base"
    tc.case.model.save_pretrained(base_dir)
    shutil.copytree(shared / "tokenizers" / FAMILIES["llama"][2], base_dir, dirs_exist_ok=True)
    init = {"input": "focus", "output": "mean_all", "focus": {"min_count": 1, "vector_size": 8}}
    cfg = ExpandConfig.from_config(init, pad_to_multiple_of=64, seed=0)
    with pytest.raises(ConfigError, match=r"model\.init focus needs target-language text"):
        expand_checkpoint(str(base_dir), str(tmp_path / "llama"), str(tmp_path / "no-text"), cfg)
    info = expand_checkpoint(str(base_dir), str(tmp_path / "llama"), str(tmp_path / "out"), cfg, text=tc.text)
    record = json.loads((tmp_path / "out" / "expansion.json").read_text())
    assert {k: record[k] for k in info} == info
    assert record["input_init"] == "focus" and record["output_init"] == "mean_all"
    assert record["init_options"] == {"focus": {**configlib.section("model.init")["focus"], "min_count": 1,
                                                "vector_size": 8}, "noise": 0.0, "shift": 0.0}


def test_mean_all_shift_lowers_the_new_logits_at_the_mean_hidden_state_by_that_many_nats(text_case):
    from vocab_expansion.model.inits import mean_hidden_state

    plain, shifted = text_case("llama"), text_case("llama")
    plain.expand({"output": "mean_all"})
    old_head = shifted.case.model.get_output_embeddings().weight[:shifted.case.base.size].detach().clone()
    shifted.expand({"output": "mean_all", "shift": 2.0})
    h = mean_hidden_state(shifted.context())
    n_old = shifted.case.base.size
    w_plain = plain.case.model.get_output_embeddings().weight.detach()
    w_shift = shifted.case.model.get_output_embeddings().weight.detach()
    n = len(shifted.ids)
    drop = (w_plain[n_old:n_old + n] - w_shift[n_old:n_old + n]) @ h
    assert torch.allclose(drop, torch.full_like(drop, 2.0), atol=1e-4)
    assert torch.equal(w_shift[:n_old], old_head)  # old rows untouched
