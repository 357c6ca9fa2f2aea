"""HTML building blocks of the run page, shared by report/html.py and the stage kinds' report hooks."""

from __future__ import annotations

import base64
import html
import re


class Markup(str):
    """Text that is already HTML: cells and fragments built here, never text read from the run."""


# C0 control characters other than tab and newlines are not allowed in HTML text; random models emit them.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def escape(value) -> str:
    return value if isinstance(value, Markup) else CONTROL.sub("\ufffd", html.escape(str(value), quote=True))


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def cell(value, tag: str = "td") -> str:
    if isinstance(value, Markup) and value.startswith(f"<{tag}"):
        return value  # a pre-built cell (classes for deltas, specialists)
    numeric = value is None or isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"<{tag}{' class=num' if numeric else ''}>{escape(fmt(value))}</{tag}>"


def table(header: list, rows: list[list]) -> str:
    """An HTML table; numbers are right-aligned; str cells are escaped, :class:`Markup` ones kept."""
    head = "".join(cell(h, "th") for h in header)
    body = "".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def delta_cell(before, after) -> Markup:
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return Markup("<td class=num>–</td>")
    change = after - before
    kind = "pos" if change > 1e-12 else "neg" if change < -1e-12 else ""
    return Markup(f"<td class='num {kind}'>{change:+.3f}</td>")


def image(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f"<img alt='{escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"


def section(anchor: str, title: str, body: str) -> tuple[str, str, str]:
    return anchor, title, f"<section id='{escape(anchor)}'><h2>{escape(title)}</h2>{body}</section>"
