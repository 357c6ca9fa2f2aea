"""``probing.png``: P_i(t) (Pass@K) over SFT steps per sub-domain, Pass@1 dashed in the same colour, specialists
starred, so one can see where the two criteria pick different checkpoints (SPEC 2.2 step 3)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from vibethinker.utils.files import write_bytes_atomic

if TYPE_CHECKING:
    from vibethinker.probe.probing import ProbeResult, Specialist


def plot_probe_curves(result: ProbeResult, specialists: dict[str, Specialist],
                      png_path: str | os.PathLike) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on training hosts
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = plt.get_cmap("tab10")
    for index, name in enumerate(result.subdomains):
        colour = colours(index % 10)
        probes = [c for c in result.checkpoints if name in c.scores]
        steps = [c.step for c in probes]
        ax.plot(steps, [c.scores[name].pass_at_k for c in probes], color=colour, marker="o", markersize=3,
                label=f"{name} pass@{result.k}")
        ax.plot(steps, [c.scores[name].pass_at_1 for c in probes], color=colour, linestyle="--", alpha=0.8,
                label=f"{name} pass@1")
        if name in specialists:
            best = specialists[name]
            ax.scatter([best.step], [best.score], marker="*", s=180, color=colour, edgecolors="black", zorder=5)
    ax.scatter([], [], marker="*", s=120, color="white", edgecolors="black", label="specialist M*_i")
    ax.set_xlabel("SFT step")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Diversity probing: pass@{result.k} (solid) vs pass@1 (dashed), n={result.n}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    plt.close(fig)
    return write_bytes_atomic(png_path, buffer.getvalue())
