"""Number theory: greatest common divisors and remainders of small expressions.

Paths:
- gcd: ``euclid`` (repeated ``a mod b``) vs ``factorisation`` (prime factors of both, multiply the shared ones);
- remainder: ``compute_then_reduce`` (evaluate the expression, reduce once) vs ``reduce_first`` (reduce every
  number mod m first and keep the running value below m), which only ever touches small numbers.
Each difficulty draws either kind. The numbers stay small at every level and difficulty adds steps: gcd inputs are at
most 60 (so Euclid's remainders are small), d1-d4 take two numbers needing 1-2, 2-3, 3-4 and 4-5 Euclid steps, d5
three numbers needing 5-7 in all. Remainders use moduli 3..9 and operands 2..30, every product is an easy one
(single-digit factors, or a two-digit factor times 2..5) and every value is at most 99; the expression grows
(d1 ``a + b``; d2 ``a * b + c``; d3 ``a * b + c * e``; d4 adds ``+ f``; d5 ``+ f * g``).
"""

from __future__ import annotations

import math
import random

from vibethinker.data.synthetic.common import LIMIT, Draft, Rejected, Steps, bounded, draw, easy_product, math_trace

SUBDOMAIN = "number_theory"
DOMAIN = "math"
GCD_MAX = 60
GCD_STEPS = {1: (1, 2), 2: (2, 3), 3: (3, 4), 4: (4, 5), 5: (5, 7)}  # Euclid steps allowed (d5: three numbers)
MOD_SHAPE = {1: "a + b", 2: "a * b + c", 3: "a * b + c * e", 4: "a * b + c * e + f", 5: "a * b + c * e + f * g"}
OPERAND_MAX = 30


def prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


def euclid_steps(a: int, b: int) -> int:
    count = 0
    while b:
        a, b, count = b, a % b, count + 1
    return count


def _gcd_inputs() -> dict[int, list[tuple[int, ...]]]:
    """Every input of every difficulty: pairs (d1-d4) and triples (d5) up to GCD_MAX with a gcd of at least 2."""
    pairs = [(a, b) for a in range(3, GCD_MAX + 1) for b in range(2, a) if math.gcd(a, b) >= 2]
    table = {d: [p for p in pairs if low <= euclid_steps(*p) <= high]
             for d, (low, high) in GCD_STEPS.items() if d < 5}
    low, high = GCD_STEPS[5]
    triples = []
    for a, b in pairs:
        first = math.gcd(a, b)
        for c in range(2, b):
            if c != first and math.gcd(first, c) >= 2:
                steps = euclid_steps(a, b) + euclid_steps(max(first, c), min(first, c))
                if low <= steps <= high:
                    triples.append((a, b, c))
    table[5] = triples
    return table


GCD_INPUTS = _gcd_inputs()


def _euclid_pair(steps: Steps, a: int, b: int) -> int:
    while b:
        a, b = b, steps.calc(a, "mod", b)
    return a


def _euclid(numbers: tuple[int, ...]) -> tuple[Steps, int]:
    if len(numbers) == 2:
        steps = Steps("Euclid, a mod b until 0")
        value = _euclid_pair(steps, *numbers)
    else:
        a, b, c = numbers
        steps = Steps("Euclid, a mod b until 0, then with the third number")
        first = _euclid_pair(steps, a, b)
        steps.say(f"The gcd of {a} and {b} is {first}.")
        value = _euclid_pair(steps, max(first, c), min(first, c))
    steps.say(f"So the gcd is {value}.")
    return steps, value


def _factorisation(numbers: tuple[int, ...]) -> tuple[Steps, int]:
    steps = Steps("prime factors, multiply the shared ones")
    factor_lists = [prime_factors(n) for n in numbers]
    for n, factors in zip(numbers, factor_lists):
        steps.say(f"{n} = {' * '.join(map(str, factors))}.")
    shared = []
    for p in factor_lists[0]:
        if all(p in rest for rest in factor_lists[1:]):
            for rest in factor_lists[1:]:
                rest.remove(p)
            shared.append(p)
    steps.say(f"Shared factors: {', '.join(map(str, shared))}.")
    value = shared[0]
    for p in shared[1:]:
        value = steps.calc(value, "*", p)
    steps.say(f"So the gcd is {value}.")
    return steps, value


def _gcd(rng: random.Random, difficulty: int) -> Draft:
    numbers = rng.choice(GCD_INPUTS[difficulty])
    first, answer = _euclid(numbers)
    second, check = _factorisation(numbers)
    assert answer == check == math.gcd(*numbers)
    bounded(LIMIT, first, second)
    listed = " and ".join(map(str, numbers)) if len(numbers) == 2 else f"{numbers[0]}, {numbers[1]} and {numbers[2]}"
    return Draft(
        question=f"Find the greatest common divisor of {listed}.", answer=answer,
        traces=[math_trace(first, answer), math_trace(second, answer)],
        paths=["euclid", "factorisation"], key=f"gcd:{','.join(map(str, numbers))}", template="gcd",
    )


def _operand(rng: random.Random, m: int) -> int:
    value = rng.randint(2, OPERAND_MAX)
    if value % m == 0:
        raise Rejected("a number divisible by m makes a degenerate reduction")
    return value


def _factors(rng: random.Random, m: int) -> tuple[int, int]:
    """Two factors of an easy product (both 2..9, or 2..5 times 10..30) worth at most LIMIT."""
    if rng.random() < 0.5:
        x, y = rng.randint(2, 9), rng.randint(2, 9)
    else:
        x, y = rng.randint(2, 5), rng.randint(10, OPERAND_MAX)
        if rng.random() < 0.5:
            x, y = y, x
    if x % m == 0 or y % m == 0:
        raise Rejected("a number divisible by m makes a degenerate reduction")
    if x * y > LIMIT or not easy_product(x, y):
        raise Rejected("product off the small table")
    return x, y


def _mod(rng: random.Random, difficulty: int) -> Draft:
    m = rng.randint(3, min(9, 5 + difficulty))
    shape = MOD_SHAPE[difficulty]
    terms = [list(_factors(rng, m)) if "*" in term else [_operand(rng, m)] for term in shape.split(" + ")]
    expression = " + ".join(" * ".join(map(str, factors)) for factors in terms)

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
    residues = [[small.calc(f, "mod", m) if f > m else f for f in factors] for factors in terms]
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
    if all(f < m for factors in terms for f in factors):
        raise Rejected("nothing to reduce first")
    bounded(LIMIT, whole, small)
    return Draft(
        question=f"Find the remainder when {expression} is divided by {m}.", answer=answer,
        traces=[math_trace(whole, answer), math_trace(small, answer)],
        paths=["compute_then_reduce", "reduce_first"], key=f"mod:{expression}%{m}", template="remainder",
    )


def generate(rng: random.Random, difficulty: int) -> Draft:
    """Pick the kind first, then resample within it, so rejections do not tilt the even gcd / remainder mix."""
    return draw(rng, _gcd if rng.random() < 0.5 else _mod, difficulty)
