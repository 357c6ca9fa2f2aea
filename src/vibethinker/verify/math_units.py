"""Units written after (or, for currency, before) an answer's value: found, named canonically, compared.

math-verify drops a trailing ``\\text{...}`` unit from both sides, so ``5\\text{ m}`` passes for ``5\\text{ cm}``.
Here the unit is split off first and its canonical name kept, so that the policy
(:attr:`~vibethinker.verify.math_policy.MathPolicy.units`) can refuse two different units while still accepting
a bare number for a gold that carries one.
"""

from __future__ import annotations

import re

# canonical name -> spellings (lower case, singular; a trailing "s"/"es" plural is stripped before lookup)
_SPELLINGS = {
    "mm": ["mm", "millimeter", "millimetre"], "cm": ["cm", "centimeter", "centimetre"],
    "m": ["m", "meter", "metre"], "km": ["km", "kilometer", "kilometre"],
    "in": ["in", "inch", "inche", '"', "''"], "ft": ["ft", "foot", "feet", "'"], "yd": ["yd", "yard"],
    "mi": ["mi", "mile"], "s": ["s", "sec", "second"], "min": ["min", "minute"],
    "h": ["h", "hr", "hour"], "day": ["day"], "week": ["week", "wk"], "month": ["month"],
    "year": ["year", "yr"], "mg": ["mg", "milligram"], "g": ["g", "gram"], "kg": ["kg", "kilogram"],
    "lb": ["lb", "pound"], "oz": ["oz", "ounce"], "ton": ["ton", "tonne"], "ml": ["ml", "milliliter", "millilitre"],
    "l": ["l", "liter", "litre"], "gal": ["gal", "gallon"], "dollar": ["dollar", "$", "usd"],
    "cent": ["cent", "¢"], "euro": ["euro", "€"], "degree": ["degree", "deg", "°", "circ"],
    "radian": ["radian", "rad"], "mph": ["mph", "miles per hour", "mile per hour"],
    "km/h": ["km/h", "kmh", "kph", "kilometers per hour"], "m/s": ["m/s", "meters per second"],
    "percent": ["percent", "%"], "unit": ["unit", "square unit", "cubic unit", "sq unit", "units squared"],
}
_CANONICAL = {spelling: name for name, spellings in _SPELLINGS.items() for spelling in spellings}
WILDCARD = "unit"  # "square units": a placeholder that agrees with any unit

_TEXT_GROUP = r"\\(?:text|textbf|textit|textsf|mbox|mathrm|textrm|textnormal|operatorname)\s*\{([^{}]*)\}"
_POWER = r"(?:\s*\^\s*\{?\s*([23])\s*\}?)?"
_TRAILING_TEXT = re.compile(r"(?:\\[,;:! ]|~|\s)*" + _TEXT_GROUP + _POWER + r"\s*$")
_TRAILING_WORD = re.compile(r"(?<=[\d\s}])\s*((?:(?:square|sq\.?|cubic)\s+)?[a-zA-Z]{2,}(?:/[a-zA-Z]+)?|'{1,2}|\")" + _POWER + r"\s*$")
_TRAILING_DEGREE = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|°)\s*$")
_LEADING_DOLLAR = re.compile(r"^\s*(-?)\s*\\\$\s*")


def canonical_unit(words: str, power: str | None = None) -> str | None:
    """The canonical name of a unit written ``words`` (``"centimeters"`` -> ``"cm"``), ``None`` if not a unit."""
    text = re.sub(r"\s+", " ", words.strip().lower().replace("\\", ""))
    square = re.match(r"^(square|sq\.?|cubic)\s+(.+)$", text)
    if square and square.group(2).rstrip("s") not in ("unit",):
        power = "2" if square.group(1).startswith("s") else "3"
        text = square.group(2)
    name = None
    for candidate in (text, text[:-1] if text.endswith("s") else None, text[:-2] if text.endswith("es") else None):
        if candidate and candidate in _CANONICAL:
            name = _CANONICAL[candidate]
            break
    if name is None:
        # an unknown word (``\\text{ apples}``) is a unit of its own name; a lone letter is a variable, not a unit
        if not re.fullmatch(r"[a-z][a-z ]+[a-z]", text):
            return None
        name = text[:-1] if text.endswith("s") and len(text) > 3 else text
    return f"{name}^{power}" if power and name != WILDCARD else name


def split_unit(answer: str) -> tuple[str, str | None]:
    """``(value, unit)``: ``5\\text{ cm}^2`` -> ``("5", "cm^2")``; ``\\$5`` -> ``("5", "dollar")``;
    ``90^\\circ`` -> ``("90", "degree")``; no unit -> ``(answer, None)``."""
    text = answer.strip()
    unit = None
    dollar = _LEADING_DOLLAR.match(text)
    if dollar and text[dollar.end():].strip():
        text, unit = dollar.group(1) + text[dollar.end():], "dollar"
    for pattern in (_TRAILING_TEXT, _TRAILING_WORD):
        match = pattern.search(text)
        if match and text[:match.start()].strip():
            name = canonical_unit(match.group(1), match.group(2))
            if pattern is _TRAILING_WORD and name is not None and name.split("^")[0] not in _SPELLINGS:
                name = None  # a bare word is a unit only when it is a known one (``2ab`` is algebra)
            if name is not None and name != "percent":
                return text[:match.start()].strip(), unit or name
    match = _TRAILING_DEGREE.search(text)
    if match and text[:match.start()].strip() and not re.search(r"\\(?:arc)?(?:sin|cos|tan|cot|sec|csc)", text):
        return text[:match.start()].strip(), unit or "degree"
    return text, unit


def units_differ(pred_unit: str | None, gold_unit: str | None) -> bool:
    """Both sides name a unit and the units are not the same (the ``unit`` placeholder agrees with any)."""
    if pred_unit is None or gold_unit is None or WILDCARD in (pred_unit, gold_unit):
        return False
    return pred_unit != gold_unit
