"""The shipped zoo's history, read from git: which run each model came from and what the ensemble scored.

Every change of ``models_zoo/manifest.json`` is a commit, and each manifest holds the metrics the evaluation
code wrote for that zoo. Reading them back with ``git show`` renders "what replacing a model was worth"
(before and after, on both test splits) exactly as it was measured then, without keeping old zoos around or
typing old scores into the pages. Example::

    python -m training.zoo_history --update-docs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from training.report import ROOT, _pct, block_file, manifest_label_source, replace_block

MANIFEST = "models_zoo/manifest.json"
BLOCK = "zoo-history"


def _git(repo: Path, *args: str) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise ValueError(f"git {' '.join(args)} failed in {repo}: {r.stderr.strip() or r.returncode}")
    return r.stdout


def manifest_versions(repo: Path = ROOT, path: str = MANIFEST, since: str | None = None) -> list[tuple[str, dict]]:
    """(short commit, manifest) for every commit that changed the manifest, oldest first; ``since`` keeps only
    the commits after that one (a shallow clone simply has fewer)."""
    spec = [f"{since}..HEAD"] if since else []
    commits = _git(repo, "log", "--reverse", "--format=%h", *spec, "--", path).split()
    return [(c, json.loads(_git(repo, "show", f"{c}:{path}"))) for c in commits]


def _row_key(manifest: dict) -> str:
    """What the table shows of a manifest; commits that changed only other fields give no new row."""
    models = [(m["name"], m["training"].get("log_dir"), m["metrics"].get("weights"), m["training"].get("status"),
               m.get("labels", "fer2013")) for m in manifest["models"]]
    ens = manifest.get("ensemble") or {}
    keys = ("weights", "public_test_accuracy", "private_test_accuracy", "private_test_accuracy_tta",
            "ferplus_private_test_accuracy")
    return json.dumps([models, {k: ens.get(k) for k in keys}], sort_keys=True)


def history_table(versions: list[tuple[str, dict]], models: tuple[str, ...] = ("cnn", "ff", "resnet18")) -> str:
    """One row per zoo that shipped: each model's run folder (stored weights, and status unless finished), the
    ensemble's weights and its scores; consecutive commits that left these unchanged are one row."""
    rows = ["| commit | trained on | " + " | ".join(models) + " | ensemble weights | ensemble PublicTest "
            "| ensemble PrivateTest | ensemble PrivateTest, flip TTA | ensemble PrivateTest, FER+ majority |",
            "|---|---|" + "---|" * (len(models) + 5)]
    last = None
    for commit, manifest in versions:
        key = _row_key(manifest)
        if key == last:
            continue
        last = key
        by_name = {m["name"]: m for m in manifest["models"]}
        cells = []
        for name in models:
            m = by_name.get(name)
            if m is None:
                cells.append("—")
                continue
            run = Path(m["training"].get("log_dir") or "unrecorded run").name
            status = m["training"].get("status", "finished")
            note = "" if status == "finished" else ", interim" if status.startswith("interim") else f", {status}"
            cells.append(f"`{run}` ({m['metrics'].get('weights', 'fp32')}{note})")
        ens = manifest.get("ensemble") or {}
        weights = ens.get("weights")
        w = " / ".join(f"{weights[n]:.2f}" for n in models if n in weights) if weights else "equal" if ens else "—"
        rows.append(f"| `{commit}` | {manifest_label_source(manifest)} | " + " | ".join(cells) + f" | {w} "
                    f"| {_pct(ens.get('public_test_accuracy'))} | {_pct(ens.get('private_test_accuracy'))} "
                    f"| {_pct(ens.get('private_test_accuracy_tta'))} "
                    f"| {_pct(ens.get('ferplus_private_test_accuracy'))} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.zoo_history",
        description="Print the history of the shipped zoo from git: for every commit that changed "
        f"{MANIFEST}, each model's run folder and stored weights and the ensemble's weights and scores, as "
        "that manifest recorded them.",
        epilog="examples:\n"
        "  python -m training.zoo_history --update-docs     # rewrite the zoo-history block in docs/results.md\n"
        "  python -m training.zoo_history --since 8086434   # only the zoos after that commit",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--repo", type=Path, default=ROOT, metavar="DIR",
                   help="git checkout to read, e.g. ../main (default: this one)")
    p.add_argument("--since", metavar="COMMIT",
                   help="only the manifest commits after this one, e.g. --since 8086434 (default: all of them)")
    p.add_argument("--update-docs", action="store_true",
                   help=f"also write the table between <!-- {BLOCK}:start --> and <!-- {BLOCK}:end --> in the "
                   "page that holds them (docs/results.md)")
    args = p.parse_args(argv)
    try:
        table = history_table(manifest_versions(args.repo, since=args.since))
        if args.update_docs:
            replace_block(block_file(BLOCK), BLOCK, table)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
