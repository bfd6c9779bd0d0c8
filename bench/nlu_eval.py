"""Evaluate the NLU on the held-out file, and by cross-validation; write bench/results/nlu.json.

Runs in the Rasa environment: `make eval-nlu`. Entities are scored on normalised values
(the contract's), not on character spans.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CONTRACT_ENTITIES = ("amount", "installments", "date", "card_last4", "id_last4", "phone")


def evaluate(model: Path, heldout: Path) -> dict[str, Any]:
    """Load `model`, parse every held-out example, and score intents and entity values."""
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.utils.log_utils import configure_structlog
    from sklearn.metrics import f1_score

    configure_structlog(logging.WARNING)  # the parse log is per message; keep the summary readable

    start = time.perf_counter()
    agent = Agent.load(str(model))
    load_s = time.perf_counter() - start
    loop = asyncio.new_event_loop()
    examples = load_data(str(heldout)).intent_examples
    for warm in examples[:5]:
        loop.run_until_complete(agent.parse_message(warm.get("text")))
    truth, pred, latencies = [], [], []
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    misses = []
    for ex in examples:
        text = ex.get("text")
        t0 = time.perf_counter()
        parsed = loop.run_until_complete(agent.parse_message(text))
        latencies.append(time.perf_counter() - t0)
        truth.append(ex.get("intent"))
        pred.append(parsed["intent"]["name"])
        if pred[-1] != truth[-1]:
            misses.append(
                {
                    "text": text,
                    "expected": truth[-1],
                    "got": pred[-1],
                    "confidence": round(parsed["intent"]["confidence"], 3),
                }
            )
        want = {(e["entity"], str(e["value"])) for e in ex.get("entities") or []}
        got = {(e["entity"], str(e["value"])) for e in parsed.get("entities", []) if e["entity"] in CONTRACT_ENTITIES}
        for ent, _ in got & want:
            tp[ent] += 1
        for ent, _ in got - want:
            fp[ent] += 1
        for ent, _ in want - got:
            fn[ent] += 1
    loop.close()
    correct = sum(t == p for t, p in zip(truth, pred, strict=True))
    confusion = Counter((t, p) for t, p in zip(truth, pred, strict=True) if t != p)
    entities = {}
    for ent in CONTRACT_ENTITIES:
        p = tp[ent] / (tp[ent] + fp[ent]) if tp[ent] + fp[ent] else 1.0
        r = tp[ent] / (tp[ent] + fn[ent]) if tp[ent] + fn[ent] else 1.0
        entities[ent] = {
            "precision": round(p, 3),
            "recall": round(r, 3),
            "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
            "support": tp[ent] + fn[ent],
        }
    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    micro_p = all_tp / (all_tp + all_fp) if all_tp + all_fp else 1.0
    micro_r = all_tp / (all_tp + all_fn) if all_tp + all_fn else 1.0
    lat = sorted(latencies)
    return {
        "examples": len(examples),
        "intent_accuracy": round(correct / len(examples), 4),
        "intent_macro_f1": round(float(f1_score(truth, pred, average="macro", labels=sorted(set(truth)))), 4),
        "entity_f1": round(2 * micro_p * micro_r / (micro_p + micro_r), 4) if micro_p + micro_r else 0.0,
        "entities": entities,
        "confusion_pairs": [{"expected": t, "got": p, "count": n} for (t, p), n in confusion.most_common(15)],
        "misses": misses,
        "model_load_s": round(load_s, 2),
        "parse_p50_ms": round(statistics.median(lat) * 1000, 2),
        "parse_p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 2),
    }


def cross_validate(config: Path, folds: int) -> dict[str, Any]:
    """Rasa's own k-fold cross-validation on the training data (intents)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            str(Path(sys.executable).parent / "rasa"),
            "test",
            "nlu",
            "--nlu",
            str(ROOT / "data/nlu"),
            "--config",
            str(config),
            "--cross-validation",
            "--folds",
            str(folds),
            "--out",
            out,
        ]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        report = json.loads((Path(out) / "intent_report.json").read_text())
    return {
        "folds": folds,
        "intent_accuracy": round(report["accuracy"], 4),
        "intent_macro_f1": round(report["macro avg"]["f1-score"], 4),
    }


def print_summary(result: dict[str, Any]) -> None:
    h = result["heldout"]
    print(
        f"held-out: {h['examples']} examples  intent accuracy {h['intent_accuracy']:.3f}  "
        f"macro-F1 {h['intent_macro_f1']:.3f}  entity F1 {h['entity_f1']:.3f}"
    )
    print(f"model load {h['model_load_s']} s   parse p50 {h['parse_p50_ms']} ms  p99 {h['parse_p99_ms']} ms")
    for ent, s in h["entities"].items():
        print(f"  {ent:<13} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}  (n={s['support']})")
    if h["confusion_pairs"]:
        print("confused (expected -> got):")
        for c in h["confusion_pairs"]:
            print(f"  {c['expected']} -> {c['got']}: {c['count']}")
    if "cross_validation" in result:
        cv = result["cross_validation"]
        print(
            f"{cv['folds']}-fold CV: intent accuracy {cv['intent_accuracy']:.3f}  macro-F1 {cv['intent_macro_f1']:.3f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(ROOT / "models/current.tar.gz"))
    parser.add_argument("--heldout", default=str(ROOT / "tests/nlu/heldout.yml"))
    parser.add_argument("--config", default=str(ROOT / "config.yml"))
    parser.add_argument("--folds", type=int, default=5, help="0 skips cross-validation")
    parser.add_argument("--out", default=str(RESULTS / "nlu.json"))
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "nlu", "heldout": evaluate(Path(args.model), Path(args.heldout))}
    if args.folds:
        print(f"running {args.folds}-fold cross-validation ...", flush=True)
        result["cross_validation"] = cross_validate(Path(args.config), args.folds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
