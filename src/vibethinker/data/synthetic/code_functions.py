"""Small Python functions with assert tests: a fixed family of ten templates with numeric parameters.

The parameters are part of the function name (``scale_3_shift_4``) and of the text, so the model can copy them and
every word 10-gram of a problem carries them (decontamination then only flags genuinely equal problems). Difficulty is
template complexity: d1 one expression; d2 a branch or a filter; d3 filter + aggregate or a range with a step; d4 a
loop with arithmetic state (modular power, digit sum); d5 a recurrence or a filtered map. Every template has two
implementations with different control flow (a loop vs a built-in, a comprehension or recursion); the tests are
computed by running the first one, and the second is checked against it at generation time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from vibethinker.data.synthetic.common import Draft, Steps, code_trace

SUBDOMAIN = "code_functions"
DOMAIN = "code"


@dataclass(frozen=True)
class Template:
    name: str  # function name pattern, parameters as {a}, {b}, ...
    params: Callable[[random.Random], dict]
    question: str
    paths: tuple[str, str]
    plans: tuple[str, str]
    bodies: tuple[str, str]  # function bodies (indented), formatted with the parameters
    arg: str
    inputs: Callable[[random.Random, dict], list]


def _ints(lo: int, hi: int):
    return lambda rng, p: [rng.randint(lo, hi) for _ in range(4)]


def _lists(rng: random.Random, p: dict) -> list:
    return [[rng.randint(0, 30) for _ in range(rng.randint(0 if i == 0 else 2, 6))] for i in range(4)]


T = Template
TEMPLATES: dict[int, list[Template]] = {
    1: [
        T("scale_{a}_shift_{b}", lambda r: {"a": r.randint(2, 12), "b": r.randint(1, 40)},
          "Write a Python function {f}(x) that returns {a} * x + {b}.",
          ("expression", "loop"), ("one expression, {a} * x + {b}", "start at {b} and add x {a} times"),
          ("    return {a} * x + {b}",
           "    total = {b}\n    for _ in range({a}):\n        total += x\n    return total"),
          "x", _ints(-10, 30)),
        T("add_{a}_mod_{m}", lambda r: {"a": r.randint(1, 40), "m": r.randint(2, 12)},
          "Write a Python function {f}(x) that returns (x + {a}) % {m} for x >= 0.",
          ("operator", "loop"), ("add {a}, then use the % operator", "add {a}, then subtract {m} while we can"),
          ("    return (x + {a}) % {m}",
           "    value = x + {a}\n    while value >= {m}:\n        value -= {m}\n    return value"),
          "x", _ints(0, 60)),
    ],
    2: [
        T("clip_{lo}_{hi}", lambda r: (lambda lo: {"lo": lo, "hi": lo + r.randint(3, 30)})(r.randint(0, 20)),
          "Write a Python function {f}(x) that returns x clipped to [{lo}, {hi}].",
          ("branches", "builtin"), ("compare x with {lo} and {hi} in two branches", "use min and max"),
          ("    if x < {lo}:\n        return {lo}\n    if x > {hi}:\n        return {hi}\n    return x",
           "    return min(max(x, {lo}), {hi})"),
          "x", lambda r, p: [r.randint(p["lo"] - 9, p["hi"] + 9) for _ in range(4)]),
        T("count_{lo}_{hi}", lambda r: (lambda lo: {"lo": lo, "hi": lo + r.randint(2, 20)})(r.randint(0, 15)),
          "Write a Python function {f}(nums) that counts v in nums with {lo} <= v <= {hi}.",
          ("loop", "builtin"), ("loop and count each v with {lo} <= v <= {hi}", "sum 1 for each v in range"),
          ("    count = 0\n    for v in nums:\n        if {lo} <= v <= {hi}:\n            count += 1\n    return count",
           "    return sum(1 for v in nums if {lo} <= v <= {hi})"),
          "nums", _lists),
    ],
    3: [
        T("times_{a}_sum_above_{k}", lambda r: {"k": r.randint(0, 25), "a": r.randint(2, 12)},
          "Write a Python function {f}(nums) that returns {a} times the sum of v > {k} in nums.",
          ("loop", "builtin"), ("loop and add {a} * v for each v > {k}", "sum the v > {k}, then multiply by {a}"),
          ("    total = 0\n    for v in nums:\n        if v > {k}:\n            total += {a} * v\n    return total",
           "    return {a} * sum(v for v in nums if v > {k})"),
          "nums", _lists),
        T("multiples_of_{k}_from_{lo}", lambda r: {"k": r.randint(2, 12), "lo": r.randint(0, 40)},
          "Write a Python function {f}(n) that counts multiples of {k} in range({lo}, n).",
          ("loop", "range_step"), ("loop x from {lo} to n and count x % {k} == 0",
                                   "the first multiple of {k} from {lo} is {first}; count a range with step {k}"),
          ("    count = 0\n    for x in range({lo}, n):\n        if x % {k} == 0:\n"
           "            count += 1\n    return count",
           "    return len(range({first}, n, {k}))"),
          "n", _ints(0, 90)),
    ],
    4: [
        T("power_{p}_mod_{m}", lambda r: {"p": r.randint(2, 9), "m": r.randint(2, 50)},
          "Write a Python function {f}(x) that returns x ** {p} % {m} for x >= 0.",
          ("loop", "builtin"), ("multiply by x {p} times, reduce mod {m} each time", "use pow with 3 arguments"),
          ("    result = 1 % {m}\n    for _ in range({p}):\n        result = result * x % {m}\n    return result",
           "    return pow(x, {p}, {m})"),
          "x", _ints(0, 30)),
        T("digits_{k}_plus_{b}", lambda r: {"k": r.randint(2, 12), "b": r.randint(0, 40)},
          "Write a Python function {f}(x) that returns {k} * (digit sum of x) + {b} for x >= 0.",
          ("loop", "builtin"), ("take digits with % 10 and // 10, then times {k} plus {b}",
                                "sum the digits of str(x), then times {k} plus {b}"),
          ("    total = 0\n    while x > 0:\n        total += x % 10\n        x //= 10\n    return {k} * total + {b}",
           "    return {k} * sum(int(c) for c in str(x)) + {b}"),
          "x", _ints(0, 9999)),
    ],
    5: [
        T("seq_{a}_{b}", lambda r: {"a": r.randint(0, 20), "b": r.randint(1, 20)},
          "Write a Python function {f}(n) where {f}(0) = {a}, {f}(1) = {b} and {f}(n) = {f}(n - 1) + {f}(n - 2).",
          ("loop", "recursion"), ("keep the last two values, {a} and {b}, and step n times",
                                  "recurse on n - 1 and n - 2, base cases {a} and {b}"),
          ("    prev, cur = {a}, {b}\n    for _ in range(n):\n        prev, cur = cur, prev + cur\n    return prev",
           "    if n == 0:\n        return {a}\n    if n == 1:\n        return {b}\n"
           "    return {f}(n - 1) + {f}(n - 2)"),
          "n", _ints(0, 12)),
        T("odd_times_{a}_plus_{b}", lambda r: {"a": r.randint(2, 12), "b": r.randint(0, 40)},
          "Write a Python function {f}(nums) that returns [{a} * v + {b} for each odd v in nums].",
          ("loop", "comprehension"), ("loop, append {a} * v + {b} for each odd v", "one list comprehension"),
          ("    out = []\n    for v in nums:\n        if v % 2 == 1:\n"
           "            out.append({a} * v + {b})\n    return out",
           "    return [{a} * v + {b} for v in nums if v % 2 == 1]"),
          "nums", _lists),
    ],
}


def _run(source: str, name: str, args: list) -> list:
    namespace: dict = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # trusted: our own template code
    return [namespace[name](arg) for arg in args]


def generate(rng: random.Random, difficulty: int) -> Draft:
    template = rng.choice(TEMPLATES[difficulty])
    params = template.params(rng)
    if "k" in params and "lo" in params:
        params["first"] = params["lo"] + (-params["lo"]) % params["k"]
    name = template.name.format(**params)
    fill = dict(params, f=name)
    programs = [f"def {name}({template.arg}):\n" + body.format(**fill) for body in template.bodies]
    args = template.inputs(rng, params)
    expected = _run(programs[0], name, args)
    if _run(programs[1], name, args) != expected:
        raise AssertionError(f"{name}: the two implementations disagree on {args}")
    tests = [f"assert {name}({arg!r}) == {out!r}" for arg, out in zip(args, expected)]
    traces = []
    for path, plan, program in zip(template.paths, template.plans, programs):
        steps = Steps(plan.format(**fill))
        steps.say(f"Check: {name}({args[-1]!r}) = {expected[-1]!r}.")
        traces.append(code_trace(steps, f"Here is the {path.replace('_', ' ')} version.", program))
    key_params = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return Draft(question=template.question.format(**fill), tests=tests, traces=traces, paths=list(template.paths),
                 key=f"code:{template.name}:{key_params}", template=template.name.split("_{")[0])
