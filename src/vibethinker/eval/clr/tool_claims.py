"""Claim source (b), no model call: the equations of a reasoning trace, checked by exact arithmetic.

Pipeline for the part inside ``<think>...</think>``:

1. ``to_plain``: LaTeX to plain math (``\\frac{a}{b}``, ``\\times``, ``\\cdot``, ``^``, ``\\binom``, ``\\sqrt``,
   ``\\equiv ... \\pmod{m}``); math delimiters, ``\\text{...}`` and unknown commands become breaks.
2. ``statements``: maximal runs of math tokens (numbers, operators, single-letter variables, ``gcd`` / ``lcm`` /
   ``C`` / ``mod`` / ...) that hold ``=`` or ``≡``, plus the sentences ``gcd of A and B is C`` and
   ``remainder when A is divided by B is C``. A run glued to words that continue it (``half of 20 = 10``) is not a
   claim.
3. ``check_statement``: a chain ``a = b = c`` is true when every link is; false when a decidable link is false;
   undecidable otherwise; a leading name (``P = 108/120 = 9/10``) without a reference value is dropped. A link is
   decided by
   * no free symbols: exact rationals (high-precision ``evalf`` for surds and pi); when the statement writes a decimal,
     ``|a - b| <= max(1e-6 * max(|a|, |b|), 0.5 * 10^-d)`` with d the most decimal places written;
   * free symbols: true when both sides are the same expression (``8(x - 1) = 8x - 8``); otherwise by substituting
     the reference solution, the unique solution of the linear equations stated in the problem text (``Solve
     5x + 1 = 3x + 17 for x`` makes ``2x = 16`` and ``x = 16 / 2 = 8`` checkable); no reference: undecidable;
   * congruences ``a ≡ b (mod m)``: m divides a - b.
   Undecidable claims (free variables, unparsable text) are skipped, not counted.
4. Selection: the LAST M distinct checkable claims before ``</think>``: the steps the final answer rests on come at
   the end of a trace, while early lines often restate the problem or try a path that is later dropped. The trace
   is walked backwards and the walk stops once M claims are kept, so a long trace is never checked in full.

Parsing goes through ``sympy.parse_expr`` (which calls ``eval``) only after the text matched a whitelist of tokens
(numbers, operators, single letters, known function names), and sizes are capped (exponents, factorials) so a
hostile or huge trace can neither run code nor stall the checker.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass, field

import sympy
from sympy.parsing.sympy_parser import implicit_multiplication, parse_expr, rationalize, standard_transformations

from vibethinker.verify.extract import THINK_CLOSE, THINK_OPEN


@dataclass
class Claim:
    """One checked claim: its text (plain notation), its parsed form, its verdict and who extracted it."""

    text: str
    parsed: str
    verdict: bool
    source: str = "tool"
    detail: str = ""


@dataclass
class ToolClaims:
    """The kept claims of one response and how many equation-like statements were found / examined / decidable."""

    claims: list[Claim] = field(default_factory=list)
    found: int = 0
    examined: int = 0
    checked: int = 0

    @property
    def verdicts(self) -> list[bool]:
        return [claim.verdict for claim in self.claims]


# ------------------------------------------------------------------------------------------------ LaTeX to plain

_TEXT_COMMANDS = re.compile(r"\\(?:text|mathrm|textrm|textbf|mathbf|operatorname|mbox|textit|mathit)\s*\{([^{}]*)\}")
_KEEP_WORDS = {"mod": " mod ", "gcd": "gcd", "lcm": "lcm"}
_BREAK_COMMANDS = r"neq?|approx|le(?:q|qslant)?|ge(?:q|qslant)?|lt|gt|sim|simeq|to|implies|Rightarrow|Longrightarrow|" \
                  r"rightarrow|iff|dots|ldots|cdots|vdots|quad|qquad|infty|pm|mp|in|notin|subset|cup|cap|forall|exists"
_SIMPLE = [(r"\\\\", "\n"), (r"\\(?:times|cdot|ast)(?![a-zA-Z])", "*"), (r"\\div(?![a-zA-Z])", "/"),
           (r"\\equiv(?![a-zA-Z])", "≡"), (r"\\(?:bmod|mod)(?![a-zA-Z])", " mod "),
           (r"\\(?:gcd|lcm)(?![a-zA-Z])", lambda m: m.group(0)[1:]), (r"\\pi(?![a-zA-Z])", " pi "),
           (r"\\(?:" + _BREAK_COMMANDS + r")(?![a-zA-Z])", " ; "), (r"\\[,;:! ]", " "), (r"\\[%{}$]", " ; "),
           (r"\\[()\[\]]", " ; "), (r"\$", " ; "), (r"\\[a-zA-Z]+", " ; "), (r"&", " "), (r"\^", "**"),
           (r"\{", "("), (r"\}", ")"), ("×", "*"), ("·", "*"), ("÷", "/"), ("−", "-")]


def _group(text: str, pos: int) -> tuple[str, int] | None:
    """The TeX argument at ``pos``: a brace group's content or one character; ``(content, end)``."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] != "{":
        return (text[pos], pos + 1) if text[pos] not in "}\\" else None
    depth = 0
    for end in range(pos, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[pos + 1:end], end + 1
    return None


def _replace_commands(text: str, pattern: str, n_args: int, build) -> str:
    """Rewrite ``\\cmd{a}{b}`` innermost first (the last occurrence never contains another one)."""
    for _ in range(200):
        matches = list(re.finditer(pattern, text))
        if not matches:
            return text
        match, args, pos = matches[-1], [], matches[-1].end()
        for _ in range(n_args):
            group = _group(text, pos)
            if group is None:
                break
            args.append(group[0])
            pos = group[1]
        replacement = build(match, args) if len(args) == n_args else " ; "
        text = text[:match.start()] + replacement + text[pos:]
    return text


def to_plain(text: str) -> str:
    """LaTeX math to the plain notation the statement finder reads (see the module docstring)."""
    text = re.sub(r"\\(?:begin|end)\s*\{[^{}]*\}", "\n", text)
    text = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)(?![a-zA-Z])\.?", "", text)
    text = text.replace("{,}", "")
    text = re.sub(r"(?<![\w)])\*\*|\*\*(?![\w(-])", " ; ", text)  # markdown bold, not a power
    text = _TEXT_COMMANDS.sub(lambda m: _KEEP_WORDS.get(m.group(1).strip().lower(), " ; "), text)
    text = re.sub(r"\\pmod\s*\{([^{}]*)\}", r" (mod \1)", text)
    text = re.sub(r"\\pmod\s*(\d+)", r" (mod \1)", text)
    text = re.sub(r"\{([^{}]*)\\choose([^{}]*)\}", r"binomial((\1),(\2))", text)
    text = _replace_commands(text, r"\\[dt]?frac(?![a-zA-Z])", 2, lambda m, a: f"(({a[0]})/({a[1]}))")
    text = _replace_commands(text, r"\\[dt]?binom(?![a-zA-Z])", 2, lambda m, a: f"binomial(({a[0]}),({a[1]}))")
    text = _replace_commands(text, r"\\sqrt\s*\[([^\]]*)\]", 1, lambda m, a: f"(({a[0]})**(1/({m.group(1)})))")
    text = _replace_commands(text, r"\\sqrt(?![a-zA-Z])", 1, lambda m, a: f"sqrt({a[0]})")
    for pattern, replacement in _SIMPLE:
        text = re.sub(pattern, replacement, text)
    # thousands separators (1,000,000) outside argument lists such as gcd(12,180)
    return re.sub(r"(?<![\d(,.])\d{1,3}(?:,\d{3})+(?!\d|\.\d)", lambda m: m.group(0).replace(",", ""), text)


# ------------------------------------------------------------------------------------------------ statements

FUNCTIONS = {"gcd", "lcm", "binomial", "binom", "factorial", "sqrt", "pi", "sin", "cos", "tan", "log", "ln", "exp",
             "floor", "ceil", "abs"}
# words that glue a number run to the sentence around it: "half of 20 = 10" is not the claim "20 = 10"
_CONTINUATION = {"of", "by", "plus", "minus", "times", "over", "divided", "multiplied", "squared", "cubed", "per",
                 "than", "into", "from", "root", "percent", "power", "th", "st", "nd", "rd", "step", "case", "line"}
_GLUED = "<glued to a word>"
_TOKEN = re.compile(r"\s+|\d+(?:\.\d+)?|[A-Za-z]+|\*\*|.", re.S)
_GCD_PHRASE = re.compile(r"\b(gcd|lcm|greatest common divisor|least common multiple|highest common factor)\s+of\s+"
                         r"(\d+(?:\s*,\s*\d+)*,?\s+and\s+\d+)\s+(?:is|=|equals)\s+(-?\d+)", re.I)
_REMAINDER_PHRASE = re.compile(r"\bremainder (?:when|of) (\d+) (?:is )?divided by (\d+) is (\d+)", re.I)


def _gcd_phrase(match: re.Match) -> str:
    name = "lcm" if match.group(1).lower().startswith(("lcm", "least")) else "gcd"
    return f"{name}({', '.join(re.findall(r'[0-9]+', match.group(2)))}) = {match.group(3)}"


_PHRASES = [(_GCD_PHRASE, _gcd_phrase), (_REMAINDER_PHRASE, lambda m: f"{m[1]} mod {m[2]} = {m[3]}")]


def _finish(text: str, start: int, end: int, before: str, after: str) -> str | None:
    """A run's statement text, trimmed of dangling operators, or None when it is no claim."""
    run = re.sub(r"\s+", " ", text[start:end]).strip()
    if "=" not in run and "≡" not in run or re.match(r"[+*/%=≡,]", run) or re.search(r"[-+*/%=≡,(]$", run):
        return None  # a run that starts or ends on an operator continues words around it
    glued = before == _GLUED or before.lower() in _CONTINUATION or after.lower() in _CONTINUATION
    if glued or run.count("(") != run.count(")"):
        return None
    return run if all(part.strip() for part in re.split(r"=|≡", run)) else None


def _kind(token: str) -> str:
    if token[0].isdigit():
        return "number"
    if token[0].isalpha():  # single letters are variables; longer words other than functions end a run
        return "word" if len(token) == 1 or token.lower() in FUNCTIONS or token == "mod" else "text"
    return "op" if token in ("**", "-", "+", "*", "/", "%", "!", "(", ")", ",", "=", "≡") else "other"


def statements(text: str) -> list[tuple[int, str]]:
    """``(position, statement)`` for every equation-like run and claim sentence of plain ``text``, in order."""
    found: list[tuple[int, str]] = []
    for pattern, build in _PHRASES:
        found += [(match.start(), build(match)) for match in pattern.finditer(text)]
        text = pattern.sub(lambda m: ";" + " " * (len(m.group(0)) - 1), text)  # same length: positions hold
    text = re.sub(r"==|!=|<=|>=|=>|:=", lambda m: ";" + " " * (len(m.group(0)) - 1), text)
    text = re.sub(r"\n[ \t]*(?=[=≡])", lambda m: " " * len(m.group(0)), text)  # "a = b \\ = c" rows continue
    run: list | None = None  # [start, end, word before]
    depth, last_word, prev_kind, spaced = 0, "", "", False

    def close(word_after: str) -> None:
        nonlocal run, depth
        if run is not None:
            statement = _finish(text, run[0], run[1], run[2], word_after)
            if statement:
                found.append((run[0], statement))
        run, depth = None, 0

    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token.isspace():
            if "\n" in token:
                close("")
                last_word = ""
            spaced = True
            continue
        kind = _kind(token)
        if kind == "text":
            close(token)
            last_word = token
        elif kind == "other" or (token in (")", ",") and depth == 0):
            close("")
            last_word = ""
        else:
            if run is not None and kind == "number" and prev_kind == "number" and spaced:
                close("")  # "2 3": juxtaposed numbers are two runs
                last_word = ""
            if run is None:  # a run glued to a word ("chr(101)") is that word's argument, not a claim
                run = [match.start(), match.end(), _GLUED if prev_kind == "text" and not spaced else last_word]
            run[1] = match.end()
            depth += {"(": 1, ")": -1}.get(token, 0)
        prev_kind, spaced = kind, False
    close("")
    return sorted(found)


# ------------------------------------------------------------------------------------------------ parsing

def _integers(*args):
    values = [sympy.sympify(arg).doit() for arg in args]
    if not values or not all(value.is_Integer for value in values):
        raise ValueError("gcd / lcm of non-integers")
    return values


_LOCALS = {letter: sympy.Symbol(letter) for letter in string.ascii_letters}
_LOCALS.update({
    "gcd": lambda *a: functools.reduce(sympy.gcd, _integers(*a)),
    "lcm": lambda *a: functools.reduce(sympy.lcm, _integers(*a)),
    "binomial": sympy.binomial, "binom": sympy.binomial, "factorial": sympy.factorial, "sqrt": sympy.sqrt,
    "pi": sympy.pi, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "log": sympy.log, "ln": sympy.log,
    "exp": sympy.exp, "floor": sympy.floor, "ceil": sympy.ceiling, "abs": sympy.Abs,
})
_TRANSFORMS = standard_transformations + (implicit_multiplication, rationalize)
_ALLOWED_CHARS = re.compile(r"^[\sA-Za-z\d.*/%!(),+-]*$")


def _allowed(text: str) -> bool:
    """Only numbers, operators, single letters and known function names reach ``parse_expr`` (which calls eval)."""
    if not _ALLOWED_CHARS.match(text) or re.search(r"\.(?!\d)|(?<!\d)\.", text):
        return False
    return all(len(word) == 1 or word in FUNCTIONS for word in re.findall(r"[A-Za-z]+", text))


MAX_EXPONENT, MAX_SYMBOLIC_EXPONENT, MAX_FACTORIAL, MAX_DIGITS = 10_000, 64, 1_000, 60


def _too_big(text: str) -> bool:
    if any(len(number) > MAX_DIGITS for number in re.findall(r"\d+", text)):
        return True
    if any(int(n) > MAX_EXPONENT for n in re.findall(r"\*\*\s*\(*\s*(\d+)", text)):
        return True
    if re.search(r"\*\*\s*\([^()]*(\*\*|!)", text) or re.search(r"\*\*[^()+\-*/]*\*\*", text) or "!!" in text:
        return True
    return any(int(n) > MAX_FACTORIAL for n in re.findall(r"(\d+)\s*\)?\s*!", text))


@functools.lru_cache(maxsize=8192)
def parse_side(text: str) -> sympy.Expr | None:
    """One side of a claim as an unevaluated sympy expression; ``None`` when it is not plain math."""
    text = re.sub(r"\bC\(\s*(\d+)\s*,\s*(\d+)\s*\)", r"binomial(\1,\2)", text.strip())
    parts = re.split(r"\bmod\b|%", text)
    if len(parts) > 1:  # "a * b mod m": mod binds loosest, left to right
        if not all(part.strip() for part in parts):
            return None
        text = functools.reduce(lambda acc, part: f"({acc})%({part})", parts)
    if not _allowed(text) or _too_big(text):
        return None
    try:
        expr = parse_expr(text, local_dict=dict(_LOCALS), transformations=_TRANSFORMS, evaluate=False)
    except Exception:  # noqa: BLE001 - parse_expr raises anything from SyntaxError to TypeError
        return None
    return expr if isinstance(expr, sympy.Basic) else None


# ------------------------------------------------------------------------------------------------ checking

def _numbers_equal(a: sympy.Expr, b: sympy.Expr, decimals: int | None) -> bool | None:
    """Exact equality, or the decimal tolerance when the claim writes decimals; ``None`` for non-numbers."""
    diff = a - b
    if a.is_Rational and b.is_Rational:
        if decimals is None:
            return diff == 0
        tolerance = max(sympy.Rational(1, 10 ** 6) * max(abs(a), abs(b)), sympy.Rational(1, 2 * 10 ** decimals))
        return bool(abs(diff) <= tolerance)
    value = diff.evalf(60)
    if not value.is_number or value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    magnitude = max(abs(complex(a.evalf(30))), abs(complex(b.evalf(30))), 1.0)
    limit = 1e-40 * magnitude if decimals is None else max(1e-6 * magnitude, 0.5 * 10 ** -decimals)
    return abs(complex(value)) <= limit


def check_link(a: sympy.Expr, b: sympy.Expr, reference: dict, decimals: int | None) -> bool | None:
    """Is ``a = b``? ``None`` when undecidable (see the module docstring)."""
    try:
        a, b = a.doit(), b.doit()
        if a.has(sympy.zoo, sympy.nan) or b.has(sympy.zoo, sympy.nan):
            return None
        free = a.free_symbols | b.free_symbols
        if free:
            diff = a - b
            if any(p.exp.is_Number and abs(p.exp) > MAX_SYMBOLIC_EXPONENT for p in diff.atoms(sympy.Pow)):
                return None  # expanding (x + 1)^1000 would stall the checker
            if sympy.expand(diff) == 0 or sympy.cancel(sympy.together(diff)) == 0:
                return True
            if not free <= set(reference):
                return None
            a, b = a.subs(reference), b.subs(reference)
        return _numbers_equal(a, b, decimals)
    except Exception:  # noqa: BLE001 - sympy raises many things on odd input; such a link is undecidable
        return None


def _decimals(text: str) -> int | None:
    places = [len(fraction) for fraction in re.findall(r"\d\.(\d+)", text)]
    return max(places) if places else None


def check_statement(text: str, reference: dict | None = None) -> tuple[bool | None, str]:
    """``(verdict, parsed form)`` of one statement; the verdict is ``None`` when it is undecidable."""
    reference = reference or {}
    modulus = None
    congruence = "≡" in text
    if congruence:
        match = re.search(r"\(\s*mod\s+([^()]+)\)\s*$|\bmod\s+([^()=≡]+)$", text)
        if not match or "=" in text:
            return None, ""
        modulus = parse_side(match.group(1) or match.group(2))
        text = text[:match.start()]
    sides = [parse_side(part) for part in re.split(r"≡" if congruence else r"=", text)]
    if any(side is None for side in sides) or (congruence and modulus is None):
        return None, ""
    if isinstance(sides[0], sympy.Symbol) and sides[0] not in reference and len(sides) > 2:
        sides = sides[1:]  # "P = 108/120 = 9/10" names a value; the arithmetic after the name is the claim
    parsed = (" ≡ " if congruence else " = ").join(str(side) for side in sides)
    if congruence:
        parsed += f" (mod {modulus})"
    decimals = _decimals(text)
    verdicts = []
    for a, b in zip(sides, sides[1:]):
        if congruence:
            residue, m = (a.doit() - b.doit()), modulus.doit()
            verdicts.append(bool(residue % m == 0) if residue.is_Integer and m.is_Integer and m != 0 else None)
        else:
            verdicts.append(check_link(a, b, reference, decimals))
    if False in verdicts:
        return False, parsed
    return (True, parsed) if all(v is True for v in verdicts) else (None, parsed)


def reference_solution(problem_text: str | None) -> dict:
    """The unique solution of the linear equations stated in the problem text, else ``{}``."""
    pairs = [[parse_side(part) for part in statement.split("=")]
             for _, statement in statements(to_plain(problem_text or "")) if "≡" not in statement]
    try:
        equations = [sympy.expand(a.doit() - b.doit()) for a, b in (p for p in pairs if len(p) == 2 and None not in p)]
        equations = [eq for eq in equations if eq.free_symbols]
        symbols = sorted({s for eq in equations for s in eq.free_symbols}, key=str)
        if not equations or len(symbols) > 4 or len(equations) > 6 or \
                any(sympy.Poly(eq, *symbols).total_degree() > 1 for eq in equations):
            return {}
        solutions = sympy.linsolve(equations, *symbols)
    except Exception:  # noqa: BLE001 - an odd problem statement just gives no reference
        return {}
    values = next(iter(solutions)) if len(solutions) == 1 else None
    return dict(zip(symbols, values)) if values is not None and all(v.is_number for v in values) else {}


def think_part(response: str) -> str:
    """The reasoning: after ``<think>`` (when present) and before the first ``</think>`` that follows."""
    start = response.find(THINK_OPEN)
    start = 0 if start < 0 else start + len(THINK_OPEN)
    end = response.find(THINK_CLOSE, start)
    return response[start:] if end < 0 else response[start:end]


def extract_tool_claims(response: str, m: int, problem_text: str | None = None) -> ToolClaims:
    """The last ``m`` distinct checkable claims of the trace, with found / examined / checked counts."""
    if m < 1:
        raise ValueError(f"M (claims per response) must be >= 1, got {m}")
    found = statements(to_plain(think_part(response)))
    reference = reference_solution(problem_text)
    result, seen = ToolClaims(found=len(found)), set()
    for _, text in reversed(found):
        if len(result.claims) == m:
            break
        result.examined += 1
        verdict, parsed = check_statement(text, reference)
        if verdict is None:
            continue
        result.checked += 1
        key = re.sub(r"\s+", "", text)
        if key in seen:
            continue
        seen.add(key)
        result.claims.append(Claim(text=text, parsed=parsed, verdict=verdict))
    result.claims.reverse()  # back to trace order
    return result


__all__ = ["Claim", "ToolClaims", "check_statement", "extract_tool_claims", "parse_side", "reference_solution",
           "statements", "think_part", "to_plain"]
