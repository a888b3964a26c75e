"""The cross-encoder family: backbones, pooling, checkpoints it loads, monoT5 scoring, truncation policy."""

from __future__ import annotations

import pytest
import torch

from boltir import ConfigError, CrossEncoderConfig, CrossEncoderModule
from boltir.models import CrossEncoderModel, load_model
from boltir.models.cross_encoder.model import truncate_texts
from tests.conftest import liven

QUERY = "what is the capital of germany"
DOCS = ["berlin is the capital of germany", "paris is the capital of france", "the moon causes the ocean tide"]


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_electra_dir", "tiny_llama_dir", "tiny_t5_dir"])
def test_any_backbone_scores_and_round_trips(fixture, request, tmp_path):
    directory = request.getfixturevalue(fixture)
    config = CrossEncoderConfig(pooling="last" if "llama" in fixture else "cls")
    module = CrossEncoderModule(directory, config=config)
    scores = module.score(QUERY, DOCS).scores
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    module.save_pretrained(tmp_path / "saved")
    reloaded = load_model(tmp_path / "saved")
    assert isinstance(reloaded, CrossEncoderModel) and reloaded.config == module.config
    torch.testing.assert_close(CrossEncoderModule(model=reloaded).score(QUERY, DOCS).scores, scores)


@pytest.mark.parametrize("pooling", ["cls", "first", "mean", "max", "last", "pooler"])
def test_pooling_strategies_score_each_pair(tiny_bert_dir, pooling):
    module = liven(CrossEncoderModule(tiny_bert_dir, config=CrossEncoderConfig(pooling=pooling)))
    scores = module.score(QUERY, DOCS).scores
    assert scores.shape == (3,) and torch.isfinite(scores).all() and scores.unique().numel() == 3


def test_scores_do_not_depend_on_batching_or_padding(tiny_bert_dir):
    module = CrossEncoderModule(tiny_bert_dir, encode_batch_size=1)
    one_by_one = module.score(QUERY, DOCS).scores
    module.encode_batch_size = 64
    torch.testing.assert_close(module.score(QUERY, DOCS).scores, one_by_one, atol=1e-5, rtol=1e-4)


def test_monot5_score_is_log_probability_of_true(tiny_t5_dir):
    module = CrossEncoderModule(tiny_t5_dir)
    model = module.model
    assert model.seq2seq and model.head is None
    scores = module.score(QUERY, DOCS).scores
    texts = [f"Query: {QUERY} Document: {d} Relevant:" for d in DOCS]
    inputs = model.tokenizer(texts, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        logits = model.backbone(**inputs, decoder_input_ids=torch.zeros(3, 1, dtype=torch.long)).logits[:, 0]
    false, true = model.tokenizer.convert_tokens_to_ids(["false", "true"])
    expected = torch.log_softmax(logits[:, [false, true]], -1)[:, 1]
    torch.testing.assert_close(scores, expected)
    assert (scores <= 0).all()


def test_monot5_needs_single_token_labels(tiny_t5_dir):
    with pytest.raises(ConfigError, match="true_token"):
        CrossEncoderModule(tiny_t5_dir, config=CrossEncoderConfig(true_token="very true"))


def _sequence_classifier(directory, num_labels):
    from transformers import BertConfig, BertForSequenceClassification

    from tests.conftest import make_bert_tokenizer  # noqa: I001

    torch.manual_seed(1)
    tokenizer = make_bert_tokenizer(directory)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=num_labels)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model, tokenizer


@pytest.mark.parametrize("num_labels", [1, 2])
def test_bert_sequence_classifier_head_is_reused(tmp_path, num_labels):
    hf_model, tokenizer = _sequence_classifier(tmp_path / "clf", num_labels)
    module = CrossEncoderModule(tmp_path / "clf")
    assert module.config.pooling == "pooler"
    with torch.no_grad():
        logits = hf_model(**tokenizer([QUERY] * 3, DOCS, padding=True, return_tensors="pt")).logits
    # two labels: castorini's monoBERT score, log p(relevant) (see tests/models/foreign/test_monobert.py)
    expected = logits[:, 0] if num_labels == 1 else torch.log_softmax(logits, 1)[:, 1]
    torch.testing.assert_close(module.score(QUERY, DOCS).scores, expected, atol=1e-5, rtol=1e-4)


def test_sentence_transformers_cross_encoder_directory(tmp_path):
    from sentence_transformers import CrossEncoder

    _sequence_classifier(tmp_path / "clf", 1)
    st_model = CrossEncoder(str(tmp_path / "clf"), device="cpu")
    st_model.save(str(tmp_path / "st"))
    expected = torch.as_tensor(st_model.predict([(QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity()))
    torch.testing.assert_close(CrossEncoderModule(tmp_path / "st").score(QUERY, DOCS).scores, expected.float(),
                               atol=1e-5, rtol=1e-4)


def test_truncation_policy_keeps_query_prefix_and_fills_rest_with_document(tiny_bert_dir):
    config = CrossEncoderConfig(query_length=8, max_length=24)
    model = CrossEncoderModule(tiny_bert_dir, config=config).model
    long_query = " ".join(["capital"] * 100)
    long_doc = " ".join(["berlin"] * 100)
    batch = model.tokenize_pairs([long_query, "tide"], [long_doc, long_doc])
    ids, types = batch.inputs["input_ids"], batch.inputs["token_type_ids"]
    assert ids.shape[1] == 24  # never above max_length
    capital = model.tokenizer.convert_tokens_to_ids("capital")
    assert (ids[0] == capital).sum() == 8  # the query keeps exactly its first query_length tokens
    assert (types[0] == 0).sum() == 8 + 2  # [CLS] query [SEP]
    assert (types[0] == 1).sum() == 24 - 10  # the document fills the rest
    assert (types[1] == 1).sum() == 24 - 3  # a short query leaves the document more room
    # scoring such pairs works end to end
    assert torch.isfinite(CrossEncoderModule(model=model).score(long_query, [long_doc]).scores).all()


def test_truncate_texts_cuts_at_token_boundaries(tiny_bert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    texts = truncate_texts(tokenizer, ["the moon causes the ocean tide", "berlin", ""], [3, 3, 3])
    assert texts == ["the moon causes", "berlin", ""]


def test_config_errors_name_the_option(tiny_bert_dir, tiny_llama_dir, tiny_t5_dir):
    with pytest.raises(ConfigError, match="poling"):
        CrossEncoderConfig.from_dict({"poling": "cls"})
    with pytest.raises(ConfigError, match="attention"):
        CrossEncoderConfig(attention="dense")
    with pytest.raises(ConfigError, match="window"):
        CrossEncoderConfig(window=4)
    with pytest.raises(ConfigError, match="window"):
        CrossEncoderConfig(attention="sparse", window=0)
    with pytest.raises(ConfigError, match="query_length"):
        CrossEncoderConfig(query_length=300, max_length=512)
    with pytest.raises(ConfigError, match="max_length"):
        CrossEncoderModule(tiny_bert_dir, config=CrossEncoderConfig(max_length=1024))
    for directory in (tiny_llama_dir, tiny_t5_dir):
        with pytest.raises(ConfigError, match="encoder backbone"):
            CrossEncoderModule(directory, config=CrossEncoderConfig(attention="set"))


def test_decoder_pairs_never_start_with_padding(tiny_llama_dir):
    """A leading pad position under a causal mask attends to nothing (NaN gradients in fused CUDA attention)."""
    model = CrossEncoderModule(tiny_llama_dir).model
    mask = model.tokenize_pairs([QUERY, "x"], [DOCS[0], "y"]).inputs["attention_mask"]
    assert mask[:, 0].all() and not mask[:, -1].all()
