from __future__ import annotations

import torch

from jupyter_llm.engine.local.sampling import RowSampler, sample
from jupyter_llm.types import SamplingParams

CPU = torch.device("cpu")


def decode(ids):
    return f"<{ids[0]}>"


def logits_for(rows: int = 1, vocab: int = 50, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed))


def draw(params: SamplingParams, logits: torch.Tensor, prompt=(1, 2)):
    sampler = RowSampler(params, list(prompt), CPU)
    return sample([sampler], logits, decode)[0]


def test_temperature_zero_is_argmax():
    logits = logits_for()
    assert draw(SamplingParams(temperature=0), logits).token_id == int(logits[0].argmax())


def test_top_k_one_is_argmax_even_when_sampling():
    logits = logits_for()
    for seed in range(5):
        params = SamplingParams(temperature=1.0, top_k=1, seed=seed)
        assert draw(params, logits).token_id == int(logits[0].argmax())


def test_same_seed_same_draws_whatever_shares_the_batch():
    logits = logits_for(rows=4)
    alone = [RowSampler(SamplingParams(temperature=1.0, seed=42), [], CPU)]
    mixed = [RowSampler(SamplingParams(temperature=0.7, seed=s), [], CPU) for s in (1, 2)]
    mixed.insert(1, RowSampler(SamplingParams(temperature=1.0, seed=42), [], CPU))
    seq_alone = [sample(alone, logits[1:2], decode)[0].token_id for _ in range(10)]
    seq_mixed = [sample(mixed, logits[:3], decode)[1].token_id for _ in range(10)]
    assert seq_alone == seq_mixed
    assert len(set(seq_alone)) > 1  # it really samples


def test_top_p_keeps_only_the_nucleus():
    logits = torch.tensor([[10.0, 9.0, 0.0, 0.0, 0.0]])
    tokens = {
        draw(SamplingParams(temperature=1.0, top_p=0.5, seed=s), logits).token_id for s in range(30)
    }
    assert tokens == {0}


def test_min_p_drops_unlikely_tokens():
    logits = torch.tensor([[5.0, 4.9, -5.0, -5.0]])
    tokens = {
        draw(SamplingParams(temperature=1.0, min_p=0.5, seed=s), logits).token_id for s in range(40)
    }
    assert tokens == {0, 1}


def test_repetition_penalty_pushes_seen_tokens_down():
    logits = torch.tensor([[3.0, 2.9, 0.0]])
    assert draw(SamplingParams(temperature=0), logits, prompt=(0,)).token_id == 0
    assert (
        draw(SamplingParams(temperature=0, repetition_penalty=1.5), logits, prompt=(0,)).token_id
        == 1
    )


def test_presence_and_frequency_penalties_count_output_tokens():
    logits = torch.tensor([[3.0, 2.5, 0.0]])
    sampler = RowSampler(SamplingParams(temperature=0, frequency_penalty=0.3), [], CPU)
    first = sample([sampler], logits, decode)[0].token_id
    sampler.observe(first)
    assert first == 0 and sample([sampler], logits, decode)[0].token_id == 0  # 2.7 > 2.5
    sampler.observe(0)
    assert sample([sampler], logits, decode)[0].token_id == 1  # 2.4 < 2.5
    presence = RowSampler(SamplingParams(temperature=0, presence_penalty=1.0), [], CPU)
    presence.observe(0)
    assert sample([presence], logits, decode)[0].token_id == 1


def test_logprobs_are_the_raw_distribution_with_top_alternatives():
    logits = logits_for()
    result = draw(SamplingParams(temperature=0, logprobs=True, top_logprobs=3), logits)
    expected = torch.log_softmax(logits[0], dim=-1)
    assert result.logprob is not None
    assert abs(result.logprob.logprob - float(expected.max())) < 1e-6
    assert [t[1] for t in result.logprob.top] == torch.topk(expected, 3).indices.tolist()
    assert result.logprob.token == f"<{result.token_id}>"


def test_draws_follow_the_distribution_and_never_pick_a_filtered_token():
    # Five tokens with probabilities .4 .3 .2 .1 0 (the last filtered out by top_k=4).
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1, 0.05])
    logits = probs.log().unsqueeze(0)
    sampler = RowSampler(SamplingParams(temperature=1.0, top_k=4, seed=7), [], CPU)
    draws = 20_000
    counts = torch.zeros(5)
    for _ in range(draws):
        counts[sample([sampler], logits, decode)[0].token_id] += 1
    assert counts[4] == 0
    expected = torch.tensor([0.4, 0.3, 0.2, 0.1])  # the four left sum to 1
    observed = counts[:4] / draws
    # Each share within 5 standard deviations of a binomial's (at most 0.0175 here).
    assert torch.all((observed - expected).abs() < 5 * (expected * (1 - expected) / draws).sqrt())
