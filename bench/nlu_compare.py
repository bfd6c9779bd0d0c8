"""Compare NLU pipelines on the same data: training time, model load, parse latency, held-out scores.

`make compare-nlu` (Rasa environment). Candidates live in bench/nlu_configs/; the figures
go to bench/results/nlu_pipelines.json and decide config.yml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.nlu_eval import RESULTS, ROOT


def main() -> int:
    rasa = str(Path(sys.executable).parent / "rasa")
    rows = []
    wanted = set(sys.argv[1:])  # names of bench/nlu_configs/*.yml to run; all when none given
    configs = [c for c in sorted((ROOT / "bench" / "nlu_configs").glob("*.yml")) if not wanted or c.stem in wanted]
    with tempfile.TemporaryDirectory() as out:
        for i, config in enumerate(configs, 1):
            name = config.stem
            print(f"[{i}/{len(configs)}] training {name} ...", flush=True)
            start = time.perf_counter()
            # A fresh training cache each time: Rasa's cache would otherwise make later runs look fast.
            env = {**os.environ, "RASA_CACHE_DIRECTORY": str(Path(out) / f"cache-{name}")}
            subprocess.run(
                [
                    rasa,
                    "train",
                    "nlu",
                    "--config",
                    str(config),
                    "--nlu",
                    str(ROOT / "data/nlu"),
                    "--out",
                    out,
                    "--fixed-model-name",
                    name,
                ],
                cwd=ROOT,
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            train_s = time.perf_counter() - start
            # A fresh process per model, so each load pays its own imports and graph building.
            scores_file = Path(out) / f"{name}.json"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.nlu_eval",
                    "--model",
                    str(Path(out) / f"{name}.tar.gz"),
                    "--folds",
                    "0",
                    "--out",
                    str(scores_file),
                ],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            all_scores = json.loads(scores_file.read_text())
            scores, real = all_scores["heldout"], all_scores.get("heldout_real") or {}
            row = {
                "pipeline": name,
                "train_s": round(train_s, 1),
                "real_intent_accuracy": real.get("intent_accuracy"),
                "real_fallback_rate": real.get("fallback_rate"),
                "kb_topic_accuracy": real.get("topic_accuracy"),
                **{
                    k: scores[k]
                    for k in (
                        "intent_accuracy",
                        "intent_macro_f1",
                        "entity_f1",
                        "model_load_s",
                        "parse_p50_ms",
                        "parse_p99_ms",
                    )
                },
            }
            rows.append(row)
            print(
                f"    train {row['train_s']} s  load {row['model_load_s']} s  parse p50 {row['parse_p50_ms']} ms "
                f"p99 {row['parse_p99_ms']} ms  accuracy {row['intent_accuracy']}  macro-F1 "
                f"{row['intent_macro_f1']}  real-style {row['real_intent_accuracy']}  "
                f"KB topic {row['kb_topic_accuracy']}",
                flush=True,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    if wanted:  # a partial run keeps the other pipelines' last figures
        old = RESULTS / "nlu_pipelines.json"
        kept = [r for r in json.loads(old.read_text())["rows"] if r["pipeline"] not in wanted] if old.exists() else []
        rows = kept + rows
    (RESULTS / "nlu_pipelines.json").write_text(json.dumps({"benchmark": "nlu_pipelines", "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
