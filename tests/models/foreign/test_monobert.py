"""castorini's monoBERT: a two-label BertForSequenceClassification scored as pygaggle's MonoBERT.rescore does."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForSequenceClassification

from boltir.models import CrossEncoderModel
from boltir.modules import CrossEncoderModule
from tests.conftest import make_bert_tokenizer

QUERY = "what causes the ocean tide?"
DOCS = ["the moon causes the ocean tide.", "berlin is the capital of germany.", "the sea water is high, the tide is low"]


def monobert_dir(directory):
    torch.manual_seed(3)
    tokenizer = make_bert_tokenizer(directory)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def pygaggle_scores(directory, query: str, docs: list[str]) -> torch.Tensor:
    """pygaggle.rerank.transformer.MonoBERT.rescore: each pair alone, log_softmax of the logits, index -1."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    scores = []
    for doc in docs:
        ret = tokenizer(query, doc,  # encode_plus there; transformers 5 has only __call__ max_length=512, truncation=True, return_token_type_ids=True,
                                    return_tensors="pt")
        with torch.no_grad():
            output = model(ret["input_ids"], token_type_ids=ret["token_type_ids"], return_dict=False)[0]
        scores.append(torch.nn.functional.log_softmax(output, 1)[0, -1])
    return torch.stack(scores)


def test_two_label_monobert_scores_log_probability_of_relevant(tmp_path):
    directory = monobert_dir(tmp_path / "monobert")
    expected = pygaggle_scores(directory, QUERY, DOCS)
    module = CrossEncoderModule(directory)
    assert module.config.relevance_log_prob and module.config.pooling == "pooler"
    torch.testing.assert_close(module.score(QUERY, DOCS).scores, expected, atol=1e-5, rtol=1e-5)
    assert (module.score(QUERY, DOCS).scores < 0).all()


def test_monobert_saved_by_boltir_keeps_scoring_the_same(tmp_path):
    directory = monobert_dir(tmp_path / "monobert")
    module = CrossEncoderModule(directory)
    module.save_pretrained(tmp_path / "saved")
    reloaded = CrossEncoderModule(model=CrossEncoderModel.from_pretrained(tmp_path / "saved"))
    assert reloaded.config.relevance_log_prob
    torch.testing.assert_close(reloaded.score(QUERY, DOCS).scores, pygaggle_scores(directory, QUERY, DOCS), atol=1e-5, rtol=1e-5)
