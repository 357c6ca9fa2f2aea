"""Score traces under the student (SPEC 2.6 step 2):

    S_LP(q, y) = -(1/|y|) * sum_t log pi_student(y_t | q, y_<t)

over the RESPONSE tokens y only. A high S_LP marks a correct trace the student does not model well yet: more to
learn from it. Each trace is tokenised by SFT's own ``tokenize_sample`` (chat-templated prompt, then the response
including the template's end-of-turn token) and batched by SFT's ``collate_rows`` (one trace per row, right
padding, positions 0..T-1, labels already shifted), so S_LP is exactly the per-token NLL SFT would train on for
that trace, averaged over the trace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from vibethinker.data.records import Problem
from vibethinker.distill.harvest import Trace
from vibethinker.model import load_model, load_tokenizer
from vibethinker.model.output_layer import masked_token_logprobs
from vibethinker.sft.packing import IGNORE_INDEX, collate_rows, tokenize_sample


@torch.no_grad()
def _score_batch(model: PreTrainedModel, samples, rows: list[list[int]], pad_id: int) -> list[float]:
    batch = collate_rows(samples, rows, None, pad_id)
    device = next(model.parameters()).device
    labels = batch.labels.to(device)
    mask = labels != IGNORE_INDEX
    # Only the response positions go through the output layer, in chunks (model/output_layer.py).
    logprobs, _ = masked_token_logprobs(model, batch.input_ids.to(device), labels.clamp_min(0), mask,
                                        batch.position_ids.to(device))
    nll = -logprobs
    row_of = mask.nonzero()[:, 0]
    sums = torch.zeros(len(rows), dtype=torch.float64, device=device).index_add_(0, row_of, nll.double())
    counts = mask.sum(dim=1)
    return (sums / counts).tolist()


def student_logprob_scores(student: str | os.PathLike | PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None,
                           problems_by_id: Mapping[str, Problem], traces: Sequence[Trace], batch_size: int = 8,
                           device: str | torch.device | None = None) -> list[float]:
    """S_LP of each trace, in the order of ``traces``.

    ``student`` is a checkpoint folder (loaded on ``device``; ``tokenizer`` may then be None) or a loaded model,
    which needs its ``tokenizer``. Traces are sorted by length before batching so padding stays small.
    """
    if isinstance(student, (str, os.PathLike)):
        tokenizer = tokenizer or load_tokenizer(student)
        model = load_model(student, device=device)
    elif tokenizer is None:
        raise ValueError("a loaded student model needs its tokenizer")
    else:
        model = student
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    samples = []
    for index, trace in enumerate(traces):
        problem = problems_by_id.get(trace.problem_id)
        if problem is None:
            raise KeyError(f"trace {index} (teacher {trace.teacher}) names unknown problem {trace.problem_id!r}")
        sample = tokenize_sample(tokenizer, problem, trace.text)
        if sample.n_response_tokens < 1:
            raise ValueError(f"trace {index} of problem {trace.problem_id!r} has no response tokens")
        samples.append(sample)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(samples)), key=lambda i: len(samples[i].input_ids))
    scores = [0.0] * len(samples)
    was_training = model.training
    model.eval()  # dropout off: the score is the model's likelihood, not a noisy sample of it
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            for index, value in zip(chunk, _score_batch(model, samples, [[i] for i in chunk], pad_id)):
                scores[index] = value
    finally:
        model.train(was_training)
    return scores
