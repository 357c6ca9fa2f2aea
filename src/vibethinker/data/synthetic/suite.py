"""Build the default training / probing / evaluation data: decontaminated train, probe and test splits.

Held-out splits come first (test, then probe) so that they never depend on how much training data is asked for: each
(split, sub-domain, difficulty) cell draws from its own ``random.Random`` seeded by name. A candidate is dropped when
- its problem text shares a word 10-gram with an accepted held-out problem (SPEC 2.1, via ``decontam``);
- its computation key (the numbers behind the wording) belongs to a held-out problem, so a test problem is never a
  reworded training problem;
- its text duplicates an accepted problem of the same split.
Test and probe are exactly balanced over difficulty; train is balanced up to a remainder of fewer than five.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from vibethinker.data.decontam import NgramIndex, assert_disjoint
from vibethinker.data.records import Problem, write_jsonl
from vibethinker.utils.files import write_json_atomic
from vibethinker.data.synthetic import ALL_SUBDOMAINS, DIFFICULTIES, SUBDOMAINS, draft_problem, to_problem

SPLIT_ORDER = ("test", "probe", "train")
HELD_OUT = ("test", "probe")


class SuiteError(RuntimeError):
    """The generators could not produce the requested number of distinct, decontaminated problems."""


def _per_subdomain(count: int) -> dict[str, int]:
    return {name: count for name in SUBDOMAINS}


class SuiteConfig(BaseModel):
    """Sizes are per sub-domain; held-out sizes must be multiples of the number of difficulties."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of the generators.")
    train: dict[str, int] = Field(default_factory=lambda: _per_subdomain(1000), description="Training problems.")
    probe: dict[str, int] = Field(default_factory=lambda: _per_subdomain(20), description="Probing problems.")
    test: dict[str, int] = Field(default_factory=lambda: _per_subdomain(50), description="Held-out problems.")
    difficulties: tuple[int, ...] = Field(DIFFICULTIES, description="Difficulty levels, balanced in held-out sets.")
    ngram: int = Field(10, gt=0, description="n of the n-gram overlap that decontamination forbids (SPEC 2.1).")
    attempts_per_problem: int = Field(40, gt=0, description=(
        "Cap on candidates per requested problem (plus a floor of 200 per cell)."))

    @classmethod
    def uniform(cls, seed: int = 0, train: int = 1000, probe: int = 20, test: int = 50,
                subdomains: tuple[str, ...] = SUBDOMAINS, **kwargs) -> "SuiteConfig":
        sizes = {split: {name: count for name in subdomains} for split, count in
                 (("train", train), ("probe", probe), ("test", test))}
        return cls(seed=seed, **sizes, **kwargs)

    def counts(self, split: str) -> dict[str, int]:
        return getattr(self, split)


@dataclass
class Suite:
    splits: dict[str, list[Problem]]
    stats: dict


def _cells(config: SuiteConfig, split: str, subdomain: str, total: int) -> list[tuple[int, int]]:
    levels = len(config.difficulties)
    if split in HELD_OUT and total % levels:
        raise ValueError(f"{split} size for {subdomain} is {total}: must be a multiple of {levels} (balanced)")
    base, extra = divmod(total, levels)
    return [(d, base + (1 if i < extra else 0)) for i, d in enumerate(config.difficulties)]


class _Builder:
    """The state shared across cells: held-out grams and keys, per-cell id counters and drop statistics."""

    def __init__(self, config: SuiteConfig):
        self.config = config
        self.held_index, self.held_keys = NgramIndex(config.ngram), set()
        self.next_index: Counter = Counter()
        self.candidates: Counter = Counter()
        self.dropped = {reason: Counter() for reason in ("decontam", "key_overlap", "duplicate")}

    def _reject_reason(self, question: str, key: str, seen_texts: set[str]) -> str | None:
        if question in seen_texts:
            return "duplicate"
        if key in self.held_keys:
            return "key_overlap"
        if self.held_index.find(question) is not None:
            return "decontam"
        return None

    def fill(self, split: str, subdomain: str, difficulty: int, count: int, seen_texts: set[str]) -> list[Problem]:
        """Draw candidates for one (split, sub-domain, difficulty) cell until ``count`` are accepted."""
        rng = random.Random(f"{self.config.seed}/{split}/{subdomain}/{difficulty}")
        cap, accepted = max(200, self.config.attempts_per_problem * count), []
        for _ in range(cap):
            if len(accepted) == count:
                return accepted
            draft = draft_problem(subdomain, difficulty, rng)
            self.candidates[split] += 1
            reason = self._reject_reason(draft.question, draft.key, seen_texts)
            if reason:
                self.dropped[reason][split] += 1
                continue
            seen_texts.add(draft.question)
            problem = to_problem(draft, subdomain, difficulty, self.next_index[subdomain, difficulty])
            self.next_index[subdomain, difficulty] += 1
            accepted.append(problem)
            if split in HELD_OUT:  # held-out problems are also kept distinct from each other
                self.held_keys.add(draft.key)
                self.held_index.add((split, problem.id), draft.question)
        if len(accepted) == count:
            return accepted
        raise SuiteError(f"{split}/{subdomain}/d{difficulty}: only {len(accepted)} of {count} distinct "
                         f"decontaminated problems after {cap} candidates; ask for fewer or widen the generator")


def generate_suite(config: SuiteConfig | None = None) -> Suite:
    """Generate test, then probe, then train (see the module docstring for what is dropped and why)."""
    config = config or SuiteConfig()
    unknown = {name for split in SPLIT_ORDER for name in config.counts(split)} - set(ALL_SUBDOMAINS)
    if unknown:
        raise ValueError(f"unknown sub-domains {sorted(unknown)}; known: {', '.join(ALL_SUBDOMAINS)}")
    builder, splits = _Builder(config), {}
    for split in SPLIT_ORDER:
        splits[split] = []
        for subdomain, total in config.counts(split).items():
            seen_texts: set[str] = set()
            for difficulty, count in _cells(config, split, subdomain, total):
                splits[split] += builder.fill(split, subdomain, difficulty, count, seen_texts)
    assert_disjoint(splits, n=config.ngram)
    stats = {
        "seed": config.seed, "ngram": config.ngram,
        "counts": {split: len(problems) for split, problems in splits.items()},
        "candidates": dict(builder.candidates),
        "dropped": {reason: dict(counter) for reason, counter in builder.dropped.items()},
        "config": config.model_dump(),
    }
    return Suite(splits=splits, stats=stats)


def write_suite(suite: Suite, out_dir: str | Path) -> Path:
    """Write ``train.jsonl``, ``probe.jsonl``, ``test.jsonl`` and ``stats.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, problems in suite.splits.items():
        write_jsonl(out / f"{split}.jsonl", problems)
    write_json_atomic(out / "stats.json", suite.stats)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the synthetic reasoning suite (train/probe/test JSONL).")
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=1000, help="training problems per sub-domain")
    parser.add_argument("--probe", type=int, default=20, help="probe problems per sub-domain (multiple of 5)")
    parser.add_argument("--test", type=int, default=50, help="test problems per sub-domain (multiple of 5)")
    args = parser.parse_args(argv)
    suite = generate_suite(SuiteConfig.uniform(args.seed, args.train, args.probe, args.test))
    write_suite(suite, args.out_dir)
    print(json.dumps({"out": args.out_dir, **{k: suite.stats[k] for k in ("counts", "dropped")}}))


if __name__ == "__main__":
    main()
