"""Counting: sum and product rules, pairs, complements, divisibility counts and "at least one" selections.

Each template has two genuinely different arguments:
- d1 ``sum_product`` (one of a + b items, and one of c): ``add_first`` (a + b) * c vs ``case_split`` a * c + b * c;
- d2 ``choose_two`` C(n,2) * c: ``formula`` n(n-1) / 2 vs ``halve_first`` (halve the even one of n, n-1 first);
  d2 ``avoid_pair`` (a starter and a main, never soup with fish): ``complement`` a * b - s * t vs ``cases``
  (a - s) * b + s * (b - t);
- d3 ``red_pair`` (one of each, at least one red): ``complement`` a * b - (a - r)(b - s) vs ``cases`` r * b + (a - r) s;
  d3 ``divisible_or`` (1..N divisible by a or b): ``inclusion_exclusion`` vs ``split_disjoint`` (a, then b-not-a);
  d3 ``team_pairs`` (pairs inside two teams): ``each_team`` C(n,2) + C(m,2) vs ``all_minus_cross`` C(n+m,2) - n*m;
- d4 ``divisible_neither``: ``complement_of_union`` vs ``remove_step_by_step``;
  d4 ``at_least_one`` (pairs with at least one of a kind): ``complement`` C(n,2) - C(r,2) vs ``cases`` by how many of
  the kind are in the pair;
- d5 ``pair_sum_product`` (2 of n or 2 of m, and 1 of c): ``add_first`` vs ``case_split``;
  d5 ``at_least_one_of_three`` (pairs from three groups with at least one of the third): ``complement`` vs ``cases``.
Numbers stay small: every C(n, 2) has n <= 9, divisors are 2..5 (the overlap of a and b is counted as
``(N // a) // b``, so no two-digit divisor appears), N is 12..60, every product is an easy one (single-digit factors,
or a two-digit factor times 2..5) and every step value is within [0, 99]; no template needs an exception to that bound.
Problem texts are short and keep their numbers close together, so word 10-grams carry the numbers.
"""

from __future__ import annotations

import math
import random

from vibethinker.data.synthetic.common import LIMIT, Draft, Rejected, Steps, bounded, draw, math_trace

SUBDOMAIN = "counting"
DOMAIN = "math"
PAIRS = [("pens", "red", "blue", "pads"), ("hats", "green", "black", "scarves"), ("cups", "small", "large", "plates"),
         ("shirts", "white", "brown", "belts"), ("books", "old", "new", "maps")]
PEOPLE = [("players", "coaches"), ("singers", "drummers"), ("pupils", "teachers"), ("cooks", "waiters"),
          ("nurses", "doctors"), ("actors", "writers")]
MENUS = [("starters", "soups", "mains", "fish"), ("shirts", "striped", "trousers", "checked"),
         ("drinks", "sweet", "cakes", "iced")]
OUTFITS = [("shirts", "hats"), ("coats", "scarves"), ("cups", "plates"), ("socks", "shoes")]
COLOURS = ["red", "blue", "green"]
MEMBERS = ["players", "pupils", "singers", "cooks", "nurses"]
KINDS = [("men", "women", "woman"), ("boys", "girls", "girl"), ("adults", "kids", "kid"), ("cooks", "chefs", "chef"),
         ("cats", "dogs", "dog"), ("pupils", "teachers", "teacher"), ("singers", "drummers", "drummer"),
         ("apples", "pears", "pear")]
TRIOS = [(("woman", "women"), ("man", "men"), "kids", "kid"), (("cat", "cats"), ("dog", "dogs"), "birds", "bird"),
         (("pupil", "pupils"), ("parent", "parents"), "teachers", "teacher"),
         (("cook", "cooks"), ("waiter", "waiters"), "chefs", "chef")]
DIVISORS = [(a, b) for a in range(2, 6) for b in range(2, 6) if a != b and math.gcd(a, b) == 1]  # (2,3) ... (5,4)
OR_TEXTS = ["Count the numbers 1 to {n} divisible by {a} or {b}.", "How many of 1 to {n} are divisible by {a} or {b}?"]
NEITHER_TEXTS = ["Numbers 1 to {n} divisible by neither {a} nor {b}: how many?",
                 "How many of 1 to {n} are divisible by neither {a} nor {b}?"]
N_MAX = 60


def formula(steps: Steps, n: int) -> int:
    """C(n,2) as n(n-1) / 2."""
    return steps.calc(steps.calc(n, "*", n - 1), "/", 2)


def halve_first(steps: Steps, n: int) -> int:
    """C(n,2) by halving whichever of n and n-1 is even, then multiplying."""
    even, odd = (n, n - 1) if n % 2 == 0 else (n - 1, n)
    return steps.calc(steps.calc(even, "/", 2), "*", odd)


def _sum_product(rng: random.Random, difficulty: int) -> Draft:
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)
    items, adj1, adj2, others = rng.choice(PAIRS)
    first = Steps("add the two groups, then multiply")
    answer = first.calc(first.calc(a, "+", b), "*", c)
    second = Steps("count each case, then add")
    second.calc(second.calc(a, "*", c), "+", second.calc(b, "*", c))
    question = f"{items.capitalize()}: {a} {adj1}, {b} {adj2}. {others.capitalize()}: {c}. How many pairs?"
    return _draft(question, answer, first, second, ["add_first", "case_split"], f"sp:{a},{b},{c}", "sum_product")


def _choose_two(rng: random.Random, difficulty: int) -> Draft:
    n, c = rng.randint(3, 9), rng.randint(2, 9)
    many, few = rng.choice(PEOPLE)
    first, second = Steps("use the formula n(n-1) / 2, then multiply"), Steps("halve the even number first")
    answer = first.calc(formula(first, n), "*", c)
    second.calc(halve_first(second, n), "*", c)
    question = f"Choose 2 of {n} {many} and 1 of {c} {few}. How many ways?"
    return _draft(question, answer, first, second, ["formula", "halve_first"], f"c2:{n},{c}", "choose_two")


def _avoid_pair(rng: random.Random, difficulty: int) -> Draft:
    a, b = rng.randint(3, 9), rng.randint(3, 9)
    s, t = rng.randint(1, a - 1), rng.randint(1, b - 1)
    xs, x_kind, ys, y_kind = rng.choice(MENUS)
    first = Steps(f"all pairs minus {x_kind} with {y_kind}")
    answer = first.calc(first.calc(a, "*", b), "-", first.calc(s, "*", t))
    second = Steps(f"not {x_kind} with any, plus {x_kind} with not {y_kind}")
    other = second.calc(second.calc(a, "-", s), "*", b)
    second.calc(other, "+", second.calc(s, "*", second.calc(b, "-", t)))
    question = f"{a} {xs} ({s} {x_kind}), {b} {ys} ({t} {y_kind}). Pairs avoiding {x_kind} with {y_kind}?"
    return _draft(question, answer, first, second, ["complement", "cases"], f"ap:{a},{s},{b},{t}", "avoid_pair")


def _red_pair(rng: random.Random, difficulty: int) -> Draft:
    a, b = rng.randint(3, 9), rng.randint(3, 9)
    r, s = rng.randint(1, a - 1), rng.randint(1, b - 1)
    xs, ys = rng.choice(OUTFITS)
    colour = rng.choice(COLOURS)
    first = Steps(f"all pairs minus pairs with no {colour}")
    total = first.calc(a, "*", b)
    answer = first.calc(total, "-", first.calc(first.calc(a, "-", r), "*", first.calc(b, "-", s)))
    second = Steps(f"{colour} first with any, plus the rest with {colour} second")
    rest = second.calc(a, "-", r)
    second.calc(second.calc(r, "*", b), "+", second.calc(rest, "*", s))
    question = f"Pairs with {colour}: {a} {xs} ({r} {colour}), {b} {ys} ({s} {colour}). How many?"
    return _draft(question, answer, first, second, ["complement", "cases"], f"rp:{a},{r},{b},{s}", "red_pair")


def _team_pairs(rng: random.Random, difficulty: int) -> Draft:
    n, m = rng.randint(2, 7), rng.randint(2, 7)
    if n + m > 9:
        raise Rejected("teams too large for small products")
    members = rng.choice(MEMBERS)
    first = Steps("count pairs in each team, then add")
    answer = first.calc(formula(first, n), "+", formula(first, m))
    second = Steps("count all pairs, then remove pairs across teams")
    total = formula(second, second.calc(n, "+", m))
    second.calc(total, "-", second.calc(n, "*", m))
    question = f"Teams of {n} and {m} {members}. How many pairs share a team?"
    return _draft(question, answer, first, second, ["each_team", "all_minus_cross"], f"tp:{n},{m}", "team_pairs")


def _multiples(steps: Steps, n: int, a: int, b: int) -> tuple[int, int]:
    return steps.calc(n, "//", a), steps.calc(n, "//", b)


def _divisible(rng: random.Random, difficulty: int) -> Draft:
    n, (a, b) = rng.randint(12, N_MAX), rng.choice(DIVISORS)
    first = Steps(f"multiples of {a} plus of {b}, minus overlap")
    by_a, by_b = _multiples(first, n, a, b)
    both = first.calc(by_a, "//", b)
    union = first.calc(first.calc(by_a, "+", by_b), "-", both)
    if difficulty >= 4:
        answer = first.calc(n, "-", union)
        second = Steps(f"remove multiples of {a}, then of {b} left")
        by_a, by_b = _multiples(second, n, a, b)
        left = second.calc(n, "-", by_a)
        second.calc(left, "-", second.calc(by_b, "-", second.calc(by_b, "//", a)))
        question = rng.choice(NEITHER_TEXTS).format(n=n, a=a, b=b)
        paths, template = ["complement_of_union", "remove_step_by_step"], "divisible_neither"
    else:
        answer = union
        second = Steps(f"multiples of {a}, then of {b} but not {a}")
        by_a, by_b = _multiples(second, n, a, b)
        second.calc(by_a, "+", second.calc(by_b, "-", second.calc(by_b, "//", a)))
        question = rng.choice(OR_TEXTS).format(n=n, a=a, b=b)
        paths, template = ["inclusion_exclusion", "split_disjoint"], "divisible_or"
    return _draft(question, answer, first, second, paths, f"{template}:{n},{a},{b}", template)


def _at_least_one(rng: random.Random, difficulty: int) -> Draft:
    m, r = rng.randint(2, 7), rng.randint(2, 7)
    if m + r > 9:
        raise Rejected("group too large for small products")
    others, kind, one = rng.choice(KINDS)
    first = Steps(f"all pairs minus pairs with no {one}")
    total = formula(first, first.calc(m, "+", r))
    answer = first.calc(total, "-", formula(first, r))
    second = Steps(f"pairs with 1 {one} plus pairs with 2 {kind}")
    second.calc(second.calc(m, "*", r), "+", formula(second, m))
    question = f"How many pairs from {m} {kind} and {r} {others} have at least one {one}?"
    return _draft(question, answer, first, second, ["complement", "cases"], f"alo:{m},{r}", "at_least_one")


def _at_least_one_of_three(rng: random.Random, difficulty: int) -> Draft:
    x, y, k = rng.randint(1, 6), rng.randint(1, 6), rng.randint(2, 7)
    if x + y + k > 9:
        raise Rejected("group too large for small products")
    xs, ys, kind, one = rng.choice(TRIOS)
    first = Steps(f"all pairs minus pairs with no {one}")
    rest = first.calc(x, "+", y)
    total = formula(first, first.calc(rest, "+", k))
    answer = first.calc(total, "-", formula(first, rest))
    second = Steps(f"pairs with 1 {one} plus pairs with 2 {kind}")
    rest = second.calc(x, "+", y)
    second.calc(second.calc(k, "*", rest), "+", formula(second, k))
    question = f"How many pairs from {x} {xs[x > 1]}, {y} {ys[y > 1]} and {k} {kind} have at least one {one}?"
    return _draft(question, answer, first, second, ["complement", "cases"], f"alo3:{x},{y},{k}",
                  "at_least_one_of_three")


def _pair_sum_product(rng: random.Random, difficulty: int) -> Draft:
    n, m, c = rng.randint(3, 9), rng.randint(3, 9), rng.randint(2, 9)
    (many, few), (other, _) = rng.sample(PEOPLE, 2)
    first = Steps("add the two kinds of pairs, then multiply")
    answer = first.calc(first.calc(formula(first, n), "+", formula(first, m)), "*", c)
    second = Steps("count each case with its choice, then add")
    left = second.calc(formula(second, n), "*", c)
    second.calc(left, "+", second.calc(formula(second, m), "*", c))
    question = f"Choose 2 of {n} {many} or 2 of {m} {few}, and 1 of {c} {other}. How many ways?"
    return _draft(question, answer, first, second, ["add_first", "case_split"], f"psp:{n},{m},{c}",
                  "pair_sum_product")


def _draft(question, answer, first, second, paths, key, template) -> Draft:
    if first.values[-1] != answer or second.values[-1] != answer:
        raise AssertionError(f"{template}: a path does not end in the answer {answer}")
    bounded(LIMIT, first, second)
    return Draft(question=question, answer=answer, traces=[math_trace(first, answer), math_trace(second, answer)],
                 paths=paths, key=key, template=template)


TEMPLATES = {1: [_sum_product], 2: [_choose_two, _avoid_pair], 3: [_red_pair, _divisible, _team_pairs],
             4: [_divisible, _at_least_one], 5: [_pair_sum_product, _at_least_one_of_three]}


def generate(rng: random.Random, difficulty: int) -> Draft:
    """Pick the template first, then resample within it, so rejections do not tilt the template mix."""
    return draw(rng, rng.choice(TEMPLATES[difficulty]), difficulty)
