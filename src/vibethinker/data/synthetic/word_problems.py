"""Everyday word problems over two-digit numbers ("Mia has 37 stickers. ..."), with integer answers in 1..999.

Meant for RL on a real pretrained chat model (e.g. SmolLM2-135M-Instruct), so unlike the default math sub-domains the
numbers are two-digit and a step value may reach the hundreds (never 1000); ``bounded(LIMIT, ...)`` does not apply.
Not part of the default suite: it is selected by name (``word_arithmetic``).

Difficulty sets the computation; the rng picks the story template, the names and the objects:
- d1 ``a + b``; d2 ``a - b`` (a > b); d3 ``a + b + c``; d4 ``a + b - c`` or ``a - b + c``;
- d5 ``a * k + c`` or ``a * k - c`` with k in 2..5;
every ``a, b, c`` in 11..99 with a non-zero ones digit (so the place-value path never writes a ``+ 0`` step and
always passes through numbers the other path does not), every answer positive (at most 99 * 5 + 99 = 594). ``key``
is the computation alone (``word:37+48``), so a held-out computation never comes back reworded in training.

Two paths that pass through different numbers:
- ``left_to_right``: each operation as the story states it (``37 + 48 = 85.``);
- ``tens_then_ones``: place value. Additions of the tens and of the ones apart, then both
  (``30 + 40 = 70. 7 + 8 = 15. 70 + 15 = 85.``); a mixed sum or a subtraction jumps by the tens, then by the ones
  (``85 - 40 = 45. 45 - 8 = 37.``), so every running value stays positive; a product multiplies the tens and the
  ones apart and adds them (``30 * 4 = 120. 7 * 4 = 28. 120 + 28 = 148.``).

Decontamination (SPEC 2.1, word 10-grams) would reject many candidates if stories shared 10-grams of fixed wording,
so every template is written so that each 10-gram of a question holds one of its numbers and a second drawn word
(another number, a name or an object): a train story then meets a held-out one's 10-gram only by rare chance
(about 1% of train candidates are dropped in a 2000 / 200 split).
"""

from __future__ import annotations

import random

from vibethinker.data.synthetic.common import Draft, Steps, math_trace

SUBDOMAIN = "word_arithmetic"
DOMAIN = "math"
PATHS = ["left_to_right", "tens_then_ones"]
PRONOUNS = {"f": ("she", "her"), "m": ("he", "him")}  # subject, object
NAMES = [("Mia", "f"), ("Leo", "m"), ("Ava", "f"), ("Noah", "m"), ("Zoe", "f"), ("Liam", "m"), ("Emma", "f"),
         ("Omar", "m"), ("Lily", "f"), ("Ben", "m"), ("Sara", "f"), ("Ravi", "m"), ("Nora", "f"), ("Sam", "m"),
         ("Ella", "f"), ("Max", "m"), ("Ruby", "f"), ("Theo", "m"), ("Hana", "f"), ("Kai", "m"), ("Iris", "f"),
         ("Jack", "m"), ("Lucy", "f"), ("Finn", "m")]
ITEMS = ["stickers", "marbles", "stamps", "shells", "beads", "cards", "coins", "buttons", "pencils", "crayons",
         "apples", "books", "balloons", "ribbons", "seeds", "rocks", "blocks", "postcards", "badges", "feathers"]
FOODS = ["cookies", "muffins", "cupcakes", "pancakes", "biscuits", "dumplings", "tarts", "rolls"]

# Each template: (name, operators in story order, text). Fields: {name} {friend} {other} (three distinct people),
# {sub} {Sub} {obj} (the first person's pronouns), {item}, {food}, numbers {a} {b} {c} {k}.
TEMPLATES: dict[int, list[tuple[str, tuple[str, ...], str]]] = {
    1: [
        ("gift", ("+",), "{name} has {a} {item}. {friend} gives {obj} {b} more. How many {item} does {name} have now?"),
        ("two_days", ("+",), ("On Monday {name} collected {a} {item}. On Tuesday {sub} collected {b}. "
                              "How many {item} did {sub} collect in total?")),
        ("box", ("+",), ("There are {a} {item} in {name}'s box. {Sub} adds {b} more. "
                         "How many {item} are in the box now?")),
        ("shop", ("+",), ("{name} had {a} {item}. At the shop {sub} bought {b} more. "
                          "How many {item} does {sub} have now?")),
        ("together", ("+",), ("{name} has {a} {item} and {friend} has {b} {item}. "
                              "How many {item} do they have together?")),
    ],
    2: [
        ("give_away", ("-",), ("{name} has {a} {item}. {Sub} gives {b} to {friend}. "
                               "How many {item} does {name} have left?")),
        ("lost", ("-",), "{name} had {a} {item} but lost {b}. How many {item} does {sub} have now?"),
        ("sold", ("-",), "{name}'s shop had {a} {item}. It sold {b} of them today. How many {item} are left?"),
        ("need", ("-",), ("{name} needs {a} {item} and has {b} so far. "
                          "How many more {item} does {name} need?")),
        ("compare", ("-",), ("{name} has {a} {item} and {friend} has {b}. "
                             "How many more {item} does {name} have than {friend}?")),
    ],
    3: [
        ("two_gifts", ("+", "+"), ("{name} has {a} {item}. {friend} gives {obj} {b} more and {other} gives {obj} {c} "
                                   "more. How many {item} does {name} have now?")),
        ("three_days", ("+", "+"), ("On Monday {name} collected {a} {item}, on Tuesday {b} and on Wednesday {c}. "
                                    "How many {item} did {sub} collect in all?")),
        ("three_friends", ("+", "+"), ("{name} has {a} {item}, {friend} has {b} and {other} has {c}. "
                                       "How many {item} do they have together?")),
        ("colours", ("+", "+"), ("{name}'s box holds {a} red {item}, {b} blue {item} and {c} green {item}. "
                                 "How many {item} are in the box?")),
        ("pages", ("+", "+"), ("{name} read {a} pages on Friday, {b} on Saturday and {c} on Sunday. "
                               "How many did {name} read?")),
    ],
    4: [
        ("gift_then_give", ("+", "-"), ("{name} has {a} {item}. {friend} gives {obj} {b} more, then {sub} gives {c} "
                                        "to {other}. How many {item} does {name} have now?")),
        ("lost_found", ("-", "+"), ("{name} had {a} {item}. {Sub} lost {b}, then found {c} more. "
                                    "How many {item} does {sub} have now?")),
        ("bus", ("+", "-"), ("{name} drives a bus with {a} passengers. At a stop {b} people board and {c} leave. "
                             "How many passengers does {name} have now?")),
        ("delivery", ("-", "+"), ("{name}'s shop had {a} {item}. It sold {b}, then got {c} more. "
                                  "How many {item} does the shop have now?")),
        ("bake", ("+", "-"), ("{name} baked {a} {food}. {Sub} baked {b} more, then {friend} ate {c}. "
                              "How many {food} are left?")),
    ],
    5: [
        ("packs", ("*", "-"), ("{name} buys {k} packs of {item} with {a} {item} in each pack. Then {sub} gives {c} to "
                               "{friend}. How many {item} does {name} have now?")),
        ("boxes", ("*", "+"), ("{name} fills {k} boxes with {a} {item} each and has {c} more. "
                               "How many {item} does {sub} have in all?")),
        ("bags", ("*", "-"), ("{name} has {k} bags with {a} {item} in each. {Sub} gives away {c}. "
                              "How many {item} are left?")),
        ("wages", ("*", "-"), ("{name} earns {a} dollars a day for {k} days, then spends {c}. "
                               "How many dollars does {name} have left?")),
        ("reading", ("*", "+"), ("{name} reads {a} pages a day for {k} days, then {c} more. "
                                 "How many pages did {name} read?")),
    ],
}


def _two_digit(rng: random.Random, high: int = 99, low: int = 11) -> int:
    """A number in low..high (capped at 99) whose ones digit is not 0."""
    return rng.choice([n for n in range(low, min(high, 99) + 1) if n % 10])


def _numbers(rng: random.Random, ops: tuple[str, ...]) -> list[int]:
    """Operands in story order, drawn so that every running value (and so the answer) stays positive."""
    if ops[0] == "*":
        a, k = _two_digit(rng), rng.randint(2, 5)
        return [a, k, _two_digit(rng, high=a * k - 1 if ops[1] == "-" else 99)]
    first = _two_digit(rng, low=12) if ops[0] == "-" else _two_digit(rng)
    numbers, total = [first], first
    for op in ops:
        value = _two_digit(rng, high=total - 1) if op == "-" else _two_digit(rng)
        numbers.append(value)
        total = total - value if op == "-" else total + value
    return numbers


def _tens_ones(n: int) -> tuple[int, int]:
    return n - n % 10, n % 10


def _left_to_right(numbers: list[int], ops: tuple[str, ...]) -> tuple[Steps, int]:
    steps = Steps("work left to right")
    total = numbers[0]
    for op, value in zip(ops, numbers[1:]):
        total = steps.calc(total, op, value)
    return steps, total


def _tens_then_ones(numbers: list[int], ops: tuple[str, ...]) -> tuple[Steps, int]:
    if ops[0] == "*":
        steps = Steps("multiply the tens and the ones apart, then add them")
        tens, ones = _tens_ones(numbers[0])
        k = numbers[1]
        total = steps.calc(steps.calc(tens, "*", k), "+", steps.calc(ones, "*", k))
        return steps, steps.calc(total, ops[1], numbers[2])
    if set(ops) == {"+"}:
        steps = Steps("add the tens, then the ones, then both")
        split = [_tens_ones(n) for n in numbers]
        tens, ones = split[0]
        for t, _ in split[1:]:
            tens = steps.calc(tens, "+", t)
        for _, o in split[1:]:
            ones = steps.calc(ones, "+", o)
        return steps, steps.calc(tens, "+", ones)
    steps = Steps("take away the tens, then the ones" if set(ops) == {"-"} else
                  "add or take away the tens, then the ones")
    total = numbers[0]
    for op, value in zip(ops, numbers[1:]):
        tens, ones = _tens_ones(value)
        total = steps.calc(steps.calc(total, op, tens), op, ones)
    return steps, total


def _key(numbers: list[int], ops: tuple[str, ...]) -> str:
    return "word:" + str(numbers[0]) + "".join(f"{op}{n}" for op, n in zip(ops, numbers[1:]))


def _fields(rng: random.Random, numbers: list[int], ops: tuple[str, ...]) -> dict[str, str | int]:
    (name, gender), (friend, _), (other, _) = rng.sample(NAMES, 3)
    sub, obj = PRONOUNS[gender]
    fields = {"name": name, "friend": friend, "other": other, "sub": sub, "Sub": sub.capitalize(), "obj": obj,
              "item": rng.choice(ITEMS), "food": rng.choice(FOODS)}
    if ops[0] == "*":
        return {**fields, "a": numbers[0], "k": numbers[1], "c": numbers[2]}
    return {**fields, **dict(zip("abc", numbers))}


def generate(rng: random.Random, difficulty: int) -> Draft:
    name, ops, text = rng.choice(TEMPLATES[difficulty])
    numbers = _numbers(rng, ops)
    first, answer = _left_to_right(numbers, ops)
    second, check = _tens_then_ones(numbers, ops)
    key = _key(numbers, ops)
    if answer != check or not 0 < answer < 1000:
        raise AssertionError(f"{key}: paths give {answer} and {check}; the draw must keep the answer in 1..999")
    return Draft(
        question=text.format(**_fields(rng, numbers, ops)), answer=answer,
        traces=[math_trace(first, answer), math_trace(second, answer)], paths=list(PATHS), key=key,
        template=f"d{difficulty}_{name}",
    )
