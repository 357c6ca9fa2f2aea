"""Canonical, JSON-safe form of a Python value, shared by the judge (parent) and the in-sandbox harness (child).

Only plain data survives: bool/None/int/str/float, list/tuple (both become lists), dict and set (order-free,
tagged). Anything else raises ``TypeError``, so a program cannot pass by returning an object whose ``__eq__`` lies.
"""

import json
import math


def canon(value, depth=0):
    if depth > 200:
        raise TypeError("value nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$f": repr(value)}
    if kind in (list, tuple):
        return [canon(item, depth + 1) for item in value]
    if kind is dict:
        items = [[canon(k, depth + 1), canon(v, depth + 1)] for k, v in value.items()]
        return {"$d": sorted(items, key=lambda kv: json.dumps(kv[0], sort_keys=True))}
    if kind in (set, frozenset):
        return {"$s": sorted((canon(item, depth + 1) for item in value), key=lambda v: json.dumps(v, sort_keys=True))}
    raise TypeError("unsupported result type %s" % kind.__name__)
