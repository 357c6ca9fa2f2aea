"""Number theory: greatest common divisors and remainders of small expressions.

Paths:
- gcd: ``euclid`` (repeated ``a mod b``) vs ``factorisation`` (prime factors of both, multiply the shared ones);
- remainder: ``compute_then_reduce`` (evaluate the expression, reduce once) vs ``reduce_first`` (reduce every
  number mod m first and keep the running value below m), which only ever touches small numbers.
Each difficulty draws either kind. Difficulty grows the gcd operands (40 -> 200, and more Euclid steps) and the
remainder expression (d1 ``a + b``; d2 ``a * b + c``; d3 ``a * b + c * e``; d4 adds ``+ f``; d5 ``+ f * g``).
"""

from __future__ import annotations

import math
import random

from vibethinker.data.synthetic.common import Draft, Rejected, Steps, draw, math_trace

SUBDOMAIN = "number_theory"
DOMAIN = "math"
GCD_MAX = {1: 40, 2: 60, 3: 90, 4: 130, 5: 200}
GCD_STEPS = {1: (1, 2), 2: (2, 3), 3: (3, 4), 4: (3, 5), 5: (4, 6)}  # Euclid steps allowed
MOD_SHAPE = {1: "a + b", 2: "a * b + c", 3: "a * b + c * e", 4: "a * b + c * e + f", 5: "a * b + c * e + f * g"}


def prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


def _euclid(a: int, b: int) -> tuple[Steps, int]:
    steps = Steps("Euclid, a mod b until 0")
    while b:
        a, b = b, steps.calc(a, "mod", b)
    steps.say(f"So the gcd is {a}.")
    return steps, a


def _factorisation(a: int, b: int) -> tuple[Steps, int]:
    steps = Steps("prime factors, multiply the shared ones")
    fa, fb = prime_factors(a), prime_factors(b)
    steps.say(f"{a} = {' * '.join(map(str, fa))}.")
    steps.say(f"{b} = {' * '.join(map(str, fb))}.")
    shared, rest = [], list(fb)
    for p in fa:
        if p in rest:
            rest.remove(p)
            shared.append(p)
    steps.say(f"Shared factors: {', '.join(map(str, shared))}.")
    value = shared[0]
    for p in shared[1:]:
        value = steps.calc(value, "*", p)
    steps.say(f"So the gcd is {value}.")
    return steps, value


def _gcd(rng: random.Random, difficulty: int) -> Draft:
    top = GCD_MAX[difficulty]
    g = rng.randint(2, min(15, top // 4))
    p, q = rng.randint(2, top // g), rng.randint(1, top // g)
    if p == q or math.gcd(p, q) != 1:
        raise Rejected("cofactors not coprime")
    a, b = max(g * p, g * q), min(g * p, g * q)
    first, answer = _euclid(a, b)
    low, high = GCD_STEPS[difficulty]
    if not low <= len(first.values) <= high:
        raise Rejected("Euclid step count does not fit this difficulty")
    second, check = _factorisation(a, b)
    assert answer == check == g
    return Draft(
        question=f"Find the greatest common divisor of {a} and {b}.", answer=answer,
        traces=[math_trace(first, answer), math_trace(second, answer)],
        paths=["euclid", "factorisation"], key=f"gcd:{a},{b}", template="gcd",
    )


def _mod(rng: random.Random, difficulty: int) -> Draft:
    m = rng.randint(3, min(9, 5 + difficulty))
    names = [c for c in MOD_SHAPE[difficulty] if c.isalpha()]
    top = 16  # the expression, not the operands, grows with difficulty
    values = {n: rng.randint(m + 1, top) for n in names}
    if any(v % m == 0 for v in values.values()):
        raise Rejected("a number divisible by m makes a degenerate reduction")
    expression = MOD_SHAPE[difficulty]
    for n in names:
        expression = expression.replace(n, str(values[n]), 1)
    terms = [[values[n] for n in term.split(" * ")] for term in MOD_SHAPE[difficulty].split(" + ")]

    whole = Steps("compute the number, then reduce it")
    totals = []
    for factors in terms:
        value = factors[0]
        for f in factors[1:]:
            value = whole.calc(value, "*", f)
        totals.append(value)
    total = totals[0]
    for value in totals[1:]:
        total = whole.calc(total, "+", value)
    answer = whole.calc(total, "mod", m)

    small = Steps(f"reduce each number mod {m} first")
    residues = [[small.calc(f, "mod", m) for f in factors] for factors in terms]
    parts = []
    for factors in residues:
        value = factors[0]
        for f in factors[1:]:
            value = small.calc(value, "*", f)
            if value >= m:
                value = small.calc(value, "mod", m)
        parts.append(value)
    running = parts[0]
    for value in parts[1:]:
        running = small.calc(running, "+", value)
        if running >= m:
            running = small.calc(running, "mod", m)
    assert running == answer
    return Draft(
        question=f"Find the remainder when {expression} is divided by {m}.", answer=answer,
        traces=[math_trace(whole, answer), math_trace(small, answer)],
        paths=["compute_then_reduce", "reduce_first"], key=f"mod:{expression}%{m}", template="remainder",
    )


def _build(rng: random.Random, difficulty: int) -> Draft:
    return (_gcd if rng.random() < 0.5 else _mod)(rng, difficulty)


def generate(rng: random.Random, difficulty: int) -> Draft:
    return draw(rng, _build, difficulty)
