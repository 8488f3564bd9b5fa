"""Charts for reports: matplotlib/seaborn figures returned as data: URIs (SVG, text kept as text)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = "colorblind"
_RC = {"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
       "svg.hashsalt": "t2s-bench"}  # stable ids: same input, same bytes


def _to_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def difficulty_chart(summary_rows: list[dict], metric: str = "exec") -> str:
    """Grouped bars: accuracy per hardness level and overall, one colour per system, 95% CI whiskers."""
    levels = ["easy", "medium", "hard", "extra", "overall"]
    systems = [r["system"] for r in summary_rows]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(8.5, 3.4))
        colors = sns.color_palette(PALETTE, len(systems))
        width = 0.8 / max(len(systems), 1)
        x = np.arange(len(levels))
        for i, row in enumerate(summary_rows):
            cells = [row["cells"][lv][metric] for lv in levels]
            acc = np.array([c["accuracy"] if c["accuracy"] is not None else np.nan for c in cells])
            low = np.array([c["low"] if c["low"] is not None else np.nan for c in cells])
            high = np.array([c["high"] if c["high"] is not None else np.nan for c in cells])
            pos = x - 0.4 + width * (i + 0.5)
            ax.bar(pos, acc * 100, width * 0.92, color=colors[i], label=row["system"])
            ax.errorbar(pos, acc * 100, yerr=[(acc - low) * 100, (high - acc) * 100], fmt="none",
                        ecolor="#333", elinewidth=0.8, capsize=2)
        ax.set_xticks(x, [f"{lv}\n(n={summary_rows[0]['cells'][lv][metric]['n']})" for lv in levels])
        ax.set_ylabel(f"{'execution' if metric == 'exec' else 'exact-match'} accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(frameon=False, ncols=min(len(systems), 4), loc="upper center", bbox_to_anchor=(0.5, 1.18),
                  fontsize=9)
        return _to_data_uri(fig)


def error_chart(dist: pd.DataFrame, totals: dict[str, int]) -> str:
    """Stacked horizontal bars: share of all examples per error class, one bar per system."""
    shares = dist.div(pd.Series(totals), axis=0).fillna(0) * 100
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(shares) + 1.6))
        colors = sns.color_palette("tab20", max(len(shares.columns), 1))
        left = np.zeros(len(shares))
        y = np.arange(len(shares))
        for j, cls in enumerate(shares.columns):
            vals = shares[cls].to_numpy()
            ax.barh(y, vals, left=left, color=colors[j], label=cls, height=0.6)
            left += vals
        ax.set_yticks(y, shares.index)
        ax.invert_yaxis()
        ax.set_xlabel("share of all examples (%)")
        ax.set_xlim(0, max(left.max() * 1.05, 1))
        ax.grid(axis="x", alpha=0.3)
        ax.legend(frameon=False, fontsize=8, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(shares) < 3 else -0.2))
        return _to_data_uri(fig)


def curves_chart(curves: pd.DataFrame, title: str = "") -> str:
    """Loss curves (left axis) and validation execution accuracy (right axis) against steps."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(8.5, 3.2))
        colors = sns.color_palette(PALETTE, 4)
        for col, c in (("train_loss", colors[0]), ("val_loss", colors[1])):
            if col in curves and curves[col].notna().any():
                part = curves[["step", col]].dropna()
                ax.plot(part["step"], part[col], color=c, label=col.replace("_", " "),
                        marker="o" if col == "val_loss" else None, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if "val_exec_acc" in curves and curves["val_exec_acc"].notna().any():
            ax2 = ax.twinx()
            part = curves[["step", "val_exec_acc"]].dropna()
            ax2.plot(part["step"], part["val_exec_acc"] * (100 if part["val_exec_acc"].max() <= 1 else 1),
                     color=colors[2], marker="s", markersize=3, label="val exec acc")
            ax2.set_ylabel("val execution accuracy (%)")
            ax2.spines["right"].set_visible(True)
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        if title:
            ax.set_title(title, fontsize=10)
        ax.legend(handles, labels, frameon=False, fontsize=9, loc="upper right")
        return _to_data_uri(fig)
