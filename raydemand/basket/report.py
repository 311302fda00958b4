"""A results table from `basket evaluate --out` JSON files: mean ± std over seeds per method.

    python -m raydemand.basket.report RESULTS_DIR [--k 10]   # reads RESULTS_DIR/*.json, prints Markdown
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

ORDER = ["cnngru", "attngru", "xgboost", "gtopfreq", "ptopfreq", "gptopfreq", "decayfreq"]


def table(results: list[dict], k: int = 10) -> str:
    cols = [f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"phr@{k}", "f1_micro", "f1_macro"]
    df = pd.DataFrame(results)
    lines = ["| method | seeds | users | " + " | ".join(cols) + " | threshold |",
             "|---" * (len(cols) + 4) + "|"]
    for name in sorted(df["model"].unique(), key=lambda m: ORDER.index(m) if m in ORDER else len(ORDER)):
        part = df[df["model"] == name]
        cells = [f"{part[c].mean():.4f} ± {part[c].std(ddof=0):.4f}" for c in cols]
        thr = ", ".join(f"{t:g}" for t in sorted(part["threshold"].unique()))
        lines.append(f"| {name} | {len(part)} | {int(part['users'].iloc[0])} | " + " | ".join(cells) + f" | {thr} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", help="folder of `basket evaluate --out` JSON files")
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args()
    results = [json.loads(f.read_text()) for f in sorted(Path(args.results).glob("*.json"))]
    print(table(results, args.k))


if __name__ == "__main__":
    main()
