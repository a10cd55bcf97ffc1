"""PNG plots of a report: wait, service level and staffing over the day."""

from __future__ import annotations

from pathlib import Path

from .report import Report, dialect_name


def plot_day(report: Report, path: Path) -> Path:
    """One figure: mean wait, service level (with the goal), staff needed and rostered."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (wait_ax, sl_ax, staff_ax) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    labels: list[str] = []
    for dialect in report.dialects():
        series = report.series(dialect)
        labels = [f.start for f in series] if len(series) > len(labels) else labels
        x = [f.interval for f in series]
        name = dialect_name(dialect)
        wait_ax.plot(x, [f.mean_wait_s for f in series], marker=".", label=name)
        sl_ax.plot(
            x, [None if f.service_level is None else 100 * f.service_level for f in series],
            marker=".", label=name,
        )  # fmt: skip
        (line,) = staff_ax.step(x, [f.needed for f in series], where="mid", label=f"{name} needed")
        staff_ax.step(
            x, [f.rostered for f in series], where="mid", linestyle="--",
            color=line.get_color(), label=f"{name} rostered",
        )  # fmt: skip
    wait_ax.set_ylabel("mean wait (s)")
    sl_ax.axhline(100 * report.goal, color="grey", linestyle=":", label="goal")
    sl_ax.set_ylabel(f"answered in {report.target_s:.0f} s (%)")
    sl_ax.set_ylim(0, 105)
    staff_ax.set_ylabel("specialists")
    for ax in (wait_ax, sl_ax, staff_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    step = max(1, len(labels) // 12)
    staff_ax.set_xticks(range(0, len(labels), step), labels[::step])
    staff_ax.set_xlabel("half hour starting")
    fig.suptitle(f"Cloud Branch, {report.profile_name} ({report.mode})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
