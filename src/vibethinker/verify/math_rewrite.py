"""String rewrites applied to an answer before math-verify reads it: each one turns a form that math-verify
misreads into one it reads right, or refuses a form that cannot be read at all.

Every rewrite is a plain function of the answer (and, where the reading depends on it, of the other side), so
that the tests can pin each one alone. Which of them run is :class:`~vibethinker.verify.math_policy.MathPolicy`'s.
"""

from __future__ import annotations

import re

_TRIG = re.compile(r"\\(?:arc)?(?:sin|cos|tan|cot|sec|csc)(?![a-zA-Z])")
_DEGREE = re.compile(r"(\d+(?:\.\d+)?|[a-zA-Z])\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|°)")
_MULTIPLIERS = {"hundred": "10^{2}", "thousand": "10^{3}", "million": "10^{6}", "billion": "10^{9}",
                "trillion": "10^{12}", "dozen": "12"}
_MULTIPLIER_WORD = re.compile(r"(?:\\(?:text|mbox|mathrm|textrm|textnormal)\s*\{\s*(" + "|".join(_MULTIPLIERS)
                              + r")s?\s*\}|(?<![a-zA-Z\\])(" + "|".join(_MULTIPLIERS) + r")s?(?![a-zA-Z]))")
_MIXED = re.compile(r"^([-+]?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_MIXED_LATEX = re.compile(r"^[-+]?\d+\s*(?:\\[ ,;!]|~)*\s*\\[dt]?frac\s*\{?\s*\d+\s*\}?\s*\{?\s*\d+\s*\}?$")
_DECIMAL_COMMA = re.compile(r"^([-+]?\d+)(?:,|\{,\})(\d+)$")
_THOUSANDS = re.compile(r"^[-+]?[1-9]\d{0,2}(?:(?:,|\{,\})\d{3})+$")
_DEFINITION = re.compile(r"^\s*(y|[a-zA-Z](?:\^\s*\{\s*-1\s*\})?\s*\(\s*[a-zA-Z](?:\s*,\s*[a-zA-Z])*\s*\))\s*=(?!=)(.+)$")
_COLUMN = re.compile(r"^\s*\\begin\{([pbBvV]?matrix)\}(.*)\\end\{\1\}\s*$", re.DOTALL)
_BASE = re.compile(r"_\s*\{?\s*(\d+)\s*\}?\s*$")
_SPACING = r"(?:\\[,;:! ]|\\q?quad(?![a-zA-Z])|~|\s)*"
_LIST_WORD = re.compile(r",?" + _SPACING + r"(?:\\(?:text|mbox|mathrm|textrm)\s*\{\s*(?:and|or)\s*\}|(?<![\\a-zA-Z])(?:and|or)"
                        r"(?![a-zA-Z]))" + _SPACING)


def brace_depth_ok(text: str) -> int:
    """Net brace depth of ``text`` (escaped ``\\{`` / ``\\}`` ignored): 0 when balanced, <0 on a stray closer."""
    depth = 0
    body = text.replace("\\\\", "  ").replace("\\{", "").replace("\\}", "")
    lowest = 0
    for char in body:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            lowest = min(lowest, depth)
    return lowest if lowest < 0 else depth


def repair_trailing(text: str) -> str:
    """Drop stray backslashes and unmatched closing braces at the very end (``42\\`` -> ``42``, ``2}}`` -> ``2``).

    Only the end is repaired: a closer that does not match inside the answer, or an opener that never closes,
    leaves the answer as it is (and the malformed-LaTeX check refuses it).
    """
    current = text.rstrip()
    while current:
        if current.endswith("\\") and not current.endswith("\\\\"):
            current = current[:-1].rstrip()
        elif current.endswith("}") and not current.endswith("\\}") and brace_depth_ok(current) < 0:
            candidate = current[:-1].rstrip()
            if brace_depth_ok(candidate) < 0 and brace_depth_ok(candidate) >= brace_depth_ok(current):
                break  # the unmatched closer is inside, not at the end
            current = candidate
        else:
            break
    return current


def _matching(text: str, start: int, opener: str, closer: str) -> int | None:
    depth = 0
    for pos in range(start, len(text)):
        if text[pos] == opener:
            depth += 1
        elif text[pos] == closer:
            depth -= 1
            if depth == 0:
                return pos
    return None


def sqrt_parentheses(text: str) -> str:
    """``\\sqrt(5)`` -> ``\\sqrt{5}``: LaTeX would print a root over "(" and math-verify reads the coefficient only
    (``3\\sqrt(5)`` as 3); the writer means the root of the parenthesised expression."""
    out, pos = [], 0
    for match in re.finditer(r"\\sqrt(?![a-zA-Z])\s*(\[[^\]]*\])?\s*\(", text):
        if match.start() < pos:
            continue
        close = _matching(text, match.end() - 1, "(", ")")
        if close is None:
            continue
        out.append(text[pos:match.start()])
        out.append(f"\\sqrt{match.group(1) or ''}{{{text[match.end():close]}}}")
        pos = close + 1
    out.append(text[pos:])
    return "".join(out)


def expand_multipliers(text: str) -> str:
    """``5\\text{ million}`` -> ``5\\times 10^{6}``: a multiplier word scales the value, it is not a unit to drop."""
    def scale(match: re.Match) -> str:
        word = (match.group(1) or match.group(2)).lower()
        return f"\\times {_MULTIPLIERS[word]}"
    return _MULTIPLIER_WORD.sub(scale, text)


def degrees_in_trigonometry(text: str) -> str:
    """Inside an answer with a trigonometric function, ``30^\\circ`` is ``\\frac{30\\pi}{180}`` (math-verify drops
    the degree sign and reads radians: ``\\cos(90^\\circ - x)`` would not be ``\\sin x``)."""
    if not _TRIG.search(text):
        return text
    return _DEGREE.sub(lambda m: f"{{\\frac{{{m.group(1)}\\pi}}{{180}}}}", text)


def decimal_comma(text: str, other: str) -> str:
    """``2,75`` -> ``2.75`` when no thousands reading exists and ``other`` is a single value (no comma at all:
    against ``(1,5)`` or ``1, 5`` the comma separates items)."""
    compact = text.strip()
    match = _DECIMAL_COMMA.match(compact)  # no space after the comma: "2, 75" is a list
    if not match or _THOUSANDS.match(compact) or "," in other.replace("{,}", "").replace(",\\!", ""):
        return text
    return f"{match.group(1)}.{match.group(2)}"


def list_words(text: str) -> str:
    """``1 and -2``, ``6 \\text{ and } 8``, ``(11,7) or (7,11)``, ``1, 2, and 3`` -> items separated by commas.

    Only a conjunction at the top level (outside every bracket and brace) with an item on each side is a
    separator; words inside a ``\\text{}`` phrase (``\\text{yes or no}``) are left alone."""
    out, pos = [], 0
    for match in _LIST_WORD.finditer(text):
        before = text[:match.start()]
        if not before.strip() or not text[match.end():].strip() or _bracket_depth(before) != 0:
            continue
        out += [text[pos:match.start()], ", "]
        pos = match.end()
    if not out:
        return text
    return "".join(out) + text[pos:]


def _bracket_depth(text: str) -> int:
    body = text.replace("\\{", "{").replace("\\}", "}")
    return sum(body.count(c) for c in "([{") - sum(body.count(c) for c in ")]}")


def top_level_comma(text: str) -> bool:
    depth = 0
    body = text.replace("\\{", "{").replace("\\}", "}").replace("{,}", "").replace(",\\!", "")
    for char in body:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            return True
    return False


def is_mixed_number(text: str) -> bool:
    """``2 1/4`` or ``2\\frac{1}{4}`` (a whole number next to a fraction)."""
    compact = text.strip()
    return bool(_MIXED.match(compact) or _MIXED_LATEX.match(compact))


def mixed_number_latex(text: str) -> str:
    """``2 1/4`` -> ``2\\frac{1}{4}`` (math-verify reads the LaTeX form as the mixed number, the plain one not)."""
    match = _MIXED.match(text.strip())
    if not match:
        return text
    sign, whole, num, den = match.groups()
    return f"{sign}{whole}\\frac{{{num}}}{{{den}}}"


def definition_rhs(text: str) -> tuple[str, str] | None:
    """``(lhs, rhs)`` of ``f(x) = ...``, ``g^{-1}(x) = ...`` or ``y = ...`` (one ``=``), else ``None``."""
    match = _DEFINITION.match(text)
    if not match or "=" in match.group(2) or re.search(r"\\[lg]eq?|[<>]", match.group(2)):
        return None
    return re.sub(r"\s+", "", match.group(1)), match.group(2).strip()


def unify_definitions(pred: str, gold: str) -> tuple[str, str]:
    """Compare what is defined, not its name: ``g(x) = x^2 - 1`` equals ``y = x^2 - 1`` and ``x^2 - 1``.

    Both sides defining (``y = ...`` or a function of the same variables): their right-hand sides are compared.
    One side a function definition and the other a bare expression: the definition's right-hand side is.
    """
    p, g = definition_rhs(pred), definition_rhs(gold)
    if p and g:
        p_args, g_args = _arguments(p[0]), _arguments(g[0])
        if p_args is None or g_args is None or p_args == g_args:
            return p[1], g[1]
        return pred, gold
    if p and "(" in p[0] and "=" not in gold:
        return p[1], gold
    if g and "(" in g[0] and "=" not in pred:
        return pred, g[1]
    return pred, gold


def _arguments(lhs: str) -> str | None:
    match = re.search(r"\((.*)\)", lhs)
    return match.group(1) if match else None


def column_entries(text: str) -> list[str] | None:
    """The entries of a one-column matrix (``\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}``), else ``None``."""
    match = _COLUMN.match(text)
    if not match or "&" in match.group(2):
        return None
    rows = [row.strip() for row in match.group(2).split("\\\\")]
    rows = rows[:-1] if rows and not rows[-1] else rows
    return rows if len(rows) >= 2 and all(rows) else None


def _is_tuple(text: str) -> bool:
    """``(a, b)``, ``[a, b]`` or ``\\langle a, b \\rangle``: against a column matrix, ``[0.5, 1]`` is the vector
    of its entries (an interval cannot equal a matrix)."""
    body = re.sub(r"\\(left|right)(?![a-zA-Z])", "", text).strip()
    bracketed = body[:1] in "([" and body[-1:] in ")]"
    return (bracketed or body.startswith("\\langle")) and top_level_comma(body[1:-1] if bracketed else body)


def column_as_tuple(pred: str, gold: str) -> tuple[str, str]:
    """A column vector and a tuple of the same entries are the same answer: the matrix side is written as a
    tuple. Two matrices, or a matrix and a set, are left alone."""
    p, g = column_entries(pred), column_entries(gold)
    if p and not g and _is_tuple(gold):
        return f"({', '.join(p)})", _as_parenthesised(gold)
    if g and not p and _is_tuple(pred):
        return _as_parenthesised(pred), f"({', '.join(g)})"
    return pred, gold


def _as_parenthesised(text: str) -> str:
    body = re.sub(r"\\(left|right)(?![a-zA-Z])", "", text).strip()
    return f"({body[1:-1]})" if body[:1] in "([" and body[-1:] in ")]" else text


def base_subscript(text: str) -> str | None:
    """The base of a number written ``4210_{5}``, else ``None``."""
    stripped = text.strip()
    if not re.match(r"^[0-9A-Fa-f]+\s*_", stripped):
        return None
    match = _BASE.search(stripped)
    return match.group(1) if match else None
