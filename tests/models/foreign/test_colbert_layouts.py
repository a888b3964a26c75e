"""Stanford ColBERT and PyLate checkpoints load by path and score as a reference computation of each project's
documented behaviour (written here from their code, independent of boltir's ColBERT).

Fixtures: tests/fixtures/colbert/{stanford,pylate}, written by tests/fixtures/colbert/make_fixtures.py.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from boltir import ConfigError
from boltir.models import BiEncoderModel, ColBERTModel, load_model
from boltir.models.foreign import detect_layout
from boltir.modules import ColBERTModule

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "colbert"
QUERIES = ["what is the capital of germany?", "who causes the ocean tide, the moon or the sea water in a river bank city?"]
DOCS = [
    "berlin is the capital of germany.",
    "paris, the capital of france!",
    "the moon causes the ocean tide; the sea water (and river water) is in a bank, ' the ocean tide is high",
    "cancer study: patients with a gene, cells and protein... risk of cancer in the cells of patients? " * 3,
]


def _insert_after_first(tensor: torch.Tensor, value: int) -> torch.Tensor:
    return torch.cat([tensor[:, :1], torch.full_like(tensor[:, :1], value), tensor[:, 1:]], 1)


def stanford_reference(directory: Path, queries: list[str], docs: list[str]) -> torch.Tensor:
    """ColBERT's QueryTokenizer/DocTokenizer.tensorize, ColBERT.query/doc and colbert_score, for all pairs."""
    meta = json.loads((directory / "artifact.metadata").read_text())
    tok = AutoTokenizer.from_pretrained(directory)
    state = load_file(str(directory / "model.safetensors"))
    bert = BertModel(BertConfig.from_pretrained(directory))
    bert.load_state_dict({k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.")})
    bert.eval()
    linear = state["linear.weight"]

    q = tok(queries, padding="max_length", truncation=True, max_length=meta["query_maxlen"] - 1, return_tensors="pt")
    q_ids = _insert_after_first(q["input_ids"], tok.convert_tokens_to_ids(meta["query_token_id"]))
    q_att = _insert_after_first(q["attention_mask"], 1)
    q_ids[q_ids == tok.pad_token_id] = tok.mask_token_id
    if meta["attend_to_mask_tokens"]:
        q_att[q_ids == tok.mask_token_id] = 1
    with torch.no_grad():
        Q = bert(q_ids, attention_mask=q_att)[0] @ linear.T
    Q = F.normalize(Q * (q_ids != tok.pad_token_id).unsqueeze(2).float(), p=2, dim=2)

    d = tok(docs, padding="longest", truncation="longest_first", max_length=meta["doc_maxlen"] - 1, return_tensors="pt")
    d_ids = _insert_after_first(d["input_ids"], tok.convert_tokens_to_ids(meta["doc_token_id"]))
    d_att = _insert_after_first(d["attention_mask"], 1)
    skiplist = {w for s in string.punctuation for w in [s, tok.encode(s, add_special_tokens=False)[0]]}
    d_mask = torch.tensor([[(x not in skiplist) and (x != tok.pad_token_id) for x in row] for row in d_ids.tolist()])
    with torch.no_grad():
        D = bert(d_ids, attention_mask=d_att)[0] @ linear.T
    D = F.normalize(D * d_mask.unsqueeze(2).float(), p=2, dim=2)

    scores = torch.empty(len(queries), len(docs))
    for i in range(len(queries)):
        for j in range(len(docs)):
            sims = D[j] @ Q[i].T  # [doc tokens, query tokens]
            sims[~d_mask[j]] = -9999
            scores[i, j] = sims.max(0).values.sum()
    return scores


def pylate_reference(directory: Path, queries: list[str], docs: list[str]) -> torch.Tensor:
    """PyLate's ColBERT.tokenize/encode (Transformer → Dense modules, expansion, skiplist, normalise) and
    colbert_scores, for all pairs."""
    settings = json.loads((directory / "config_sentence_transformers.json").read_text())
    modules = json.loads((directory / "modules.json").read_text())
    tok = AutoTokenizer.from_pretrained(directory)
    tok.pad_token_id = tok.mask_token_id
    bert = AutoModel.from_pretrained(directory).eval()
    denses = [load_file(str(directory / m["path"] / "model.safetensors")) for m in modules[1:]]

    def encode(texts: list[str], is_query: bool) -> list[torch.Tensor]:
        length = settings["query_length"] if is_query else settings["document_length"]
        prefix_id = tok.convert_tokens_to_ids(settings["query_prefix"] if is_query else settings["document_prefix"])
        padding = "max_length" if is_query and settings["do_query_expansion"] else True
        f = tok([t.strip() for t in texts], padding=padding, truncation="longest_first", max_length=length - 1,
                return_tensors="pt")
        f = {"input_ids": _insert_after_first(f["input_ids"], prefix_id),
             "attention_mask": _insert_after_first(f["attention_mask"], 1),
             "token_type_ids": _insert_after_first(f["token_type_ids"], 0)}
        if is_query and settings["attend_to_expansion_tokens"]:
            f["attention_mask"].fill_(1)
        with torch.no_grad():
            h = bert(**f).last_hidden_state
            for dense in denses:
                h = h @ dense["linear.weight"].T + dense.get("linear.bias", 0)
        if is_query:
            masks = torch.ones_like(f["input_ids"], dtype=torch.bool)
        else:
            skiplist = torch.tensor([tok.convert_tokens_to_ids(w) for w in settings["skiplist_words"]])
            masks = ~torch.isin(f["input_ids"], skiplist) & f["attention_mask"].bool()
        return [F.normalize(e[m], p=2, dim=1) for e, m in zip(h, masks)]

    Q, D = encode(queries, True), encode(docs, False)
    return torch.tensor([[float((q @ d.T).max(1).values.sum()) for d in D] for q in Q])


def boltir_scores(model: ColBERTModel, queries: list[str], docs: list[str]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.score(model.encode_queries(model.tokenize_queries(queries)), model.encode_docs(model.tokenize_docs(docs)))


LAYOUTS = {"stanford": stanford_reference, "pylate": pylate_reference}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_checkpoint_scores_as_its_project_does(layout):
    directory = FIXTURES / layout
    expected = LAYOUTS[layout](directory, QUERIES, DOCS)
    module = ColBERTModule(directory)
    torch.testing.assert_close(boltir_scores(module.model, QUERIES, DOCS), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(module.score(QUERIES[0], DOCS).scores, expected[0], atol=1e-5, rtol=1e-5)
    loaded = load_model(directory)
    assert isinstance(loaded, ColBERTModel)
    torch.testing.assert_close(boltir_scores(loaded, QUERIES, DOCS), expected, atol=1e-5, rtol=1e-5)


def test_stanford_checkpoint_settings_come_from_its_metadata():
    config = ColBERTModule(FIXTURES / "stanford").config
    assert (config.embedding_dim, config.query_length, config.doc_length) == (16, 12, 40)
    assert (config.query_marker, config.doc_marker) == ("[unused0]", "[unused1]")
    assert config.query_augmentation and config.mask_punctuation and not config.attend_to_mask_tokens
    assert not config.projection_bias


def test_pylate_projections_fold_into_one_with_its_bias():
    model = ColBERTModule(FIXTURES / "pylate").model
    assert model.projection.weight.shape == (16, 32) and model.projection.bias is not None
    assert (model.config.query_marker, model.config.doc_marker) == ("[Q] ", "[D] ")
    queries = model.tokenize_queries(QUERIES)
    assert queries["input_ids"].shape == (2, 12)  # expanded with [MASK] to query_length
    assert (queries["input_ids"][:, 1] == model.tokenizer.convert_tokens_to_ids("[Q] ")).all()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_loaded_checkpoint_saves_as_boltir_and_reloads_the_same(layout, tmp_path):
    module = ColBERTModule(FIXTURES / layout)
    before = boltir_scores(module.model, QUERIES, DOCS)
    module.save_pretrained(tmp_path / "saved")
    assert detect_layout(tmp_path / "saved") is None or (tmp_path / "saved" / "boltir_config.json").is_file()
    torch.testing.assert_close(boltir_scores(load_model(tmp_path / "saved"), QUERIES, DOCS), before)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_single_vector_class_refuses_a_colbert_checkpoint(layout):
    with pytest.raises(ConfigError, match="colbert"):
        BiEncoderModel.from_pretrained(FIXTURES / layout)


def test_unsupported_settings_are_named(tmp_path):
    stanford = shutil.copytree(FIXTURES / "stanford", tmp_path / "stanford")
    meta = json.loads((stanford / "artifact.metadata").read_text())
    (stanford / "artifact.metadata").write_text(json.dumps({**meta, "similarity": "l2"}))
    with pytest.raises(ConfigError, match="artifact.metadata: similarity='l2'"):
        ColBERTModule(stanford)
    pylate = shutil.copytree(FIXTURES / "pylate", tmp_path / "pylate")
    settings = json.loads((pylate / "config_sentence_transformers.json").read_text())
    (pylate / "config_sentence_transformers.json").write_text(json.dumps({**settings, "skiplist_words": ["the"]}))
    with pytest.raises(ConfigError, match="skiplist_words"):
        ColBERTModule(pylate)
    with pytest.raises(ConfigError, match="embedding_dim"):
        ColBERTModule(FIXTURES / "stanford", config_overrides={"embedding_dim": 8})
