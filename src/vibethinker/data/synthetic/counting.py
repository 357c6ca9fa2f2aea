"""Counting: sum and product rules, combinations, divisibility counts and "at least one" selections.

Each template has two genuinely different arguments:
- d1 ``sum_product`` (one of a + b items, and one of c): ``add_first`` (a + b) * c vs ``case_split`` a * c + b * c;
- d2 ``choose_three`` C(n,3) * c: ``formula`` n(n-1)(n-2) / 6 vs ``build_up`` C(n,1) -> C(n,2) -> C(n,3);
  d2 ``team_pairs`` (pairs inside two teams): ``each_team`` C(n,2) + C(m,2) vs ``all_minus_cross`` C(n+m,2) - n*m;
- d3 ``divisible_or`` (1..N divisible by a or b): ``inclusion_exclusion`` vs ``split_disjoint`` (a, then b-not-a);
- d4 ``two_groups`` C(n1,k1) * C(n2,k2): ``formula`` vs ``build_up`` for each factor;
  d4 ``divisible_neither``: ``complement_of_union`` vs ``remove_step_by_step``;
- d5 ``at_least_one`` (teams with at least one of a kind, or of both kinds): ``complement`` total minus the teams
  missing a kind vs ``cases`` by how many of the kind are in the team;
  d5 ``divisible_range`` (lo..hi divisible by a or b): ``per_divisor_range`` (hi // d - (lo-1) // d per divisor,
  then inclusion-exclusion) vs ``prefix_difference`` (inclusion-exclusion on 1..hi minus the same on 1..lo-1).
Problem texts put the numbers first and the question last, so every word 10-gram carries at least two numbers.
"""

from __future__ import annotations

import math
import random

from vibethinker.data.synthetic.common import Draft, Steps, bounded, draw, math_trace

SUBDOMAIN = "counting"
DOMAIN = "math"
LIMIT = 600
PAIRS = [("pen", "red", "blue", "pad"), ("hat", "green", "black", "scarf"), ("cup", "small", "large", "plate"),
         ("shirt", "white", "brown", "belt"), ("book", "old", "new", "map")]
PEOPLE = [("players", "coaches"), ("singers", "drummers"), ("pupils", "teachers"), ("cooks", "waiters"),
          ("nurses", "doctors"), ("actors", "writers")]
GROUPS = [("boys", "girls"), ("cats", "dogs"), ("red balls", "blue balls"), ("apples", "pears"),
          ("roses", "tulips"), ("pens", "pencils"), ("songs", "poems"), ("coins", "stamps")]
KINDS = [("men", "women", "woman"), ("boys", "girls", "girl"), ("adults", "kids", "kid"), ("cooks", "chefs", "chef")]
COPRIME = [(a, b) for a in range(2, 10) for b in range(a + 1, 10) if math.gcd(a, b) == 1]


def formula(steps: Steps, n: int, k: int) -> int:
    """C(n,k) as the falling product over k! (k <= 3)."""
    if k == 0:
        return 1
    if k == 1:
        return n
    value = steps.calc(n, "*", n - 1)
    if k == 3:
        value = steps.calc(value, "*", n - 2)
    return steps.calc(value, "/", math.factorial(k))


def build_up(steps: Steps, n: int, k: int) -> int:
    """C(n,k) from C(n,1) by C(n,i) = C(n,i-1) * (n-i+1) / i."""
    if k == 0:
        return 1
    steps.say(f"C({n},1) = {n}.")
    value = n
    for i in range(2, k + 1):
        value = steps.calc(steps.calc(value, "*", n - i + 1), "/", i)
    return value


def _sum_product(rng: random.Random, difficulty: int) -> Draft:
    a, b, c = rng.randint(2, 12), rng.randint(2, 12), rng.randint(2, 9)
    item, adj1, adj2, other = rng.choice(PAIRS)
    first = Steps("add the two groups, then multiply")
    answer = first.calc(first.calc(a, "+", b), "*", c)
    second = Steps("count each case, then add")
    second.calc(second.calc(a, "*", c), "+", second.calc(b, "*", c))
    question = f"Pick a {item} ({a} {adj1} or {b} {adj2}) and a {other} ({c} kinds). How many ways?"
    return _draft(question, answer, first, second, ["add_first", "case_split"], f"sp:{a},{b},{c}", "sum_product")


def _choose_three(rng: random.Random, difficulty: int) -> Draft:
    n, c = rng.randint(5, 10), rng.randint(2, 12)
    many, few = rng.choice(PEOPLE)
    first, second = Steps("use the formula n(n-1)(n-2) / 6"), Steps("build up C(n,1), C(n,2), C(n,3)")
    answer = first.calc(formula(first, n, 3), "*", c)
    second.calc(build_up(second, n, 3), "*", c)
    question = f"Choose 3 of {n} {many} and 1 of {c} {few}. How many ways?"
    return _draft(question, answer, first, second, ["formula", "build_up"], f"c3:{n},{c}", "choose_three")


def _team_pairs(rng: random.Random, difficulty: int) -> Draft:
    n, m = rng.randint(2, 10), rng.randint(2, 10)
    members = rng.choice(["players", "pupils", "singers", "cooks", "nurses"])
    first = Steps("count pairs in each team, then add")
    answer = first.calc(formula(first, n, 2), "+", formula(first, m, 2))
    second = Steps("count all pairs, then remove pairs across teams")
    total = formula(second, second.calc(n, "+", m), 2)
    second.calc(total, "-", second.calc(n, "*", m))
    question = f"Teams of {n} and {m} {members}. How many pairs share a team?"
    return _draft(question, answer, first, second, ["each_team", "all_minus_cross"], f"tp:{n},{m}", "team_pairs")


def _multiples(steps: Steps, n: int, a: int, b: int) -> tuple[int, int, int]:
    return steps.calc(n, "//", a), steps.calc(n, "//", b), steps.calc(n, "//", steps.calc(a, "*", b))


def _divisible(rng: random.Random, difficulty: int) -> Draft:
    n, (a, b) = rng.randint(20, 99), rng.choice(COPRIME)
    first, second = Steps(f"multiples of {a} plus of {b}, minus overlap"), None
    by_a, by_b, both = _multiples(first, n, a, b)
    union = first.calc(first.calc(by_a, "+", by_b), "-", both)
    if difficulty >= 4:
        answer = first.calc(n, "-", union)
        second = Steps(f"remove multiples of {a}, then of {b} left")
        by_a, by_b, both = _multiples(second, n, a, b)
        second.calc(second.calc(n, "-", by_a), "-", second.calc(by_b, "-", both))
        question = f"Count the numbers 1 to {n} divisible by neither {a} nor {b}."
        paths, template = ["complement_of_union", "remove_step_by_step"], "divisible_neither"
    else:
        answer = union
        second = Steps(f"multiples of {a}, then of {b} but not {a}")
        by_a, by_b, both = _multiples(second, n, a, b)
        second.calc(by_a, "+", second.calc(by_b, "-", both))
        question = f"Count the numbers 1 to {n} divisible by {a} or {b}."
        paths, template = ["inclusion_exclusion", "split_disjoint"], "divisible_or"
    return _draft(question, answer, first, second, paths, f"{template}:{n},{a},{b}", template)


def _two_groups(rng: random.Random, difficulty: int) -> Draft:
    k1, k2 = rng.choice([(3, 1), (1, 3), (3, 2), (2, 3), (3, 3)])
    n1, n2 = rng.randint(max(k1 + 1, 2), 7), rng.randint(max(k2 + 1, 2), 7)
    many, few = rng.choice(GROUPS)
    first, second = Steps("use the formula for each group, then multiply"), Steps("build up each group, then multiply")
    answer = first.calc(formula(first, n1, k1), "*", formula(first, n2, k2))
    second.calc(build_up(second, n1, k1), "*", build_up(second, n2, k2))
    question = f"Choose {k1} of {n1} {many} and {k2} of {n2} {few}. How many ways?"
    return _draft(question, answer, first, second, ["formula", "build_up"], f"tg:{k1},{n1},{k2},{n2}", "two_groups")


def _at_least_one(rng: random.Random, difficulty: int) -> Draft:
    k, both = 3, rng.random() < 0.5
    m, w = rng.randint(k, 8), rng.randint(k if both else 2, 8)
    others, kind, one = rng.choice(KINDS)
    first = Steps(f"all teams minus teams with no {one}" + (" or no one of the other kind" if both else ""))
    answer = formula(first, first.calc(m, "+", w), k)
    answer = first.calc(answer, "-", formula(first, m, k))
    if both:
        answer = first.calc(answer, "-", formula(first, w, k))
    second = Steps(f"add the cases by number of {kind}")
    cases = []
    for j in range(1, (k - 1 if both else min(k, w)) + 1):
        second.say(f"{j} {one if j == 1 else kind}:")
        left, right = formula(second, w, j), formula(second, m, k - j)
        cases.append(second.calc(left, "*", right) if k - j else left)
    total = cases[0]
    for value in cases[1:]:
        total = second.calc(total, "+", value)
    goal = "both kinds" if both else f"at least 1 {one}"
    question = f"How many teams of {k} from {m} {others} and {w} {kind} have {goal}?"
    return _draft(question, answer, first, second, ["complement", "cases"],
                  f"alo:{k},{m},{w},{'both' if both else 'one'}", "at_least_one", limit=1000)


def _divisible_range(rng: random.Random, difficulty: int) -> Draft:
    lo, (a, b) = rng.randint(10, 50), rng.choice(COPRIME)
    hi = rng.randint(lo + 20, 99)
    first = Steps(f"count {lo} to {hi} for each divisor, minus overlap")
    below = first.calc(lo, "-", 1)
    ranges = [first.calc(first.calc(hi, "//", d), "-", first.calc(below, "//", d)) for d in (a, b)]
    both = first.calc(first.calc(hi, "//", ab := first.calc(a, "*", b)), "-", first.calc(below, "//", ab))
    answer = first.calc(first.calc(ranges[0], "+", ranges[1]), "-", both)
    second = Steps(f"count 1 to {hi}, remove 1 to {lo - 1}")
    below = second.calc(lo, "-", 1)
    unions = []
    for top in (hi, below):
        by_a, by_b, by_ab = _multiples(second, top, a, b)
        unions.append(second.calc(second.calc(by_a, "+", by_b), "-", by_ab))
    second.calc(unions[0], "-", unions[1])
    question = f"Count the numbers {lo} to {hi} divisible by {a} or {b}."
    return _draft(question, answer, first, second, ["per_divisor_range", "prefix_difference"],
                  f"dr:{lo},{hi},{a},{b}", "divisible_range")


def _draft(question, answer, first, second, paths, key, template, limit: int = LIMIT) -> Draft:
    if first.values[-1] != answer or second.values[-1] != answer:
        raise AssertionError(f"{template}: a path does not end in the answer {answer}")
    bounded(limit, first, second)
    return Draft(question=question, answer=answer, traces=[math_trace(first, answer), math_trace(second, answer)],
                 paths=paths, key=key, template=template)


TEMPLATES = {1: [_sum_product], 2: [_choose_three, _team_pairs], 3: [_divisible], 4: [_two_groups, _divisible],
             5: [_at_least_one, _divisible_range]}


def _build(rng: random.Random, difficulty: int) -> Draft:
    return rng.choice(TEMPLATES[difficulty])(rng, difficulty)


def generate(rng: random.Random, difficulty: int) -> Draft:
    return draw(rng, _build, difficulty)
