"""Entities two ways on the same annotated examples: the rule extractor (bot/extract.py) against a
blank spaCy `zh` pipeline (jieba segmenter) whose EntityRuler holds the patterns as data
(bench/spacy_entity_patterns.yml). Part of `make compare-nlu`; writes bench/results/nlu_entities.json.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import yaml

from bench.nlu_eval import PUBLIC_ENTITIES, RESULTS, ROOT
from bot.extract import extract, to_number
from bot.normalize import normalize

PATTERNS = ROOT / "bench" / "spacy_entity_patterns.yml"
UNITS = {"万": 10000, "w": 10000, "W": 10000, "千": 1000, "k": 1000, "K": 1000}
YEARS = {"半年": 6, "一年": 12, "两年": 24, "三年": 36, "四年": 48, "五年": 60}
Pair = tuple[str, str]


def spacy_pipeline() -> Any:
    import spacy

    spec = yaml.safe_load(PATTERNS.read_text(encoding="utf-8"))

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return spec["num"] if node == "NUM" else node

    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    ruler = nlp.add_pipe("entity_ruler")
    # An EntityRuler, typed as its base Pipe.
    ruler.add_patterns([{"label": p["label"], "pattern": fill(p["pattern"])} for p in spec["patterns"]])  # type: ignore[attr-defined]
    return nlp


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def span_value(label: str, tokens: list[str]) -> str | None:
    """The contract's normalised value of a matched span."""
    text = "".join(tokens)
    if label == "phone":
        return re.sub(r"\D", "", text)[-11:]
    if label in ("id_last4", "card_last4"):
        return tokens[-1].upper()
    if label == "date":
        return text
    if label == "installments":
        for years, months in YEARS.items():
            if years in text:
                return str(months)
        m = re.search(r"\d+|[一二两三四五六七八九十]+", text)
        n = to_number(m.group(0)) if m else None
        return str(int(n)) if n is not None else None
    numbers = [
        t.replace(",", "") for t in tokens if re.fullmatch(r"[\d.,]+|[零〇一二两三四五六七八九十百千万亿点]+", t)
    ]
    n = to_number("".join(numbers)) if numbers else None
    if n is None:
        return None
    unit = next((UNITS[t] for t in tokens if t in UNITS), 1)
    return _plain(n * unit)


def spacy_extract(nlp: Any) -> Callable[[str], set[Pair]]:
    def run(text: str) -> set[Pair]:
        doc = nlp(text)
        out = set()
        for ent in doc.ents:
            value = span_value(ent.label_, [t.text for t in ent])
            if value:
                out.add((ent.label_, value))
        return out

    return run


def rules_extract(text: str) -> set[Pair]:
    found = extract(text, date(2026, 1, 1))  # values are compared, not resolved dates: any day does
    return {(e["entity"], str(e["value"])) for e in found if e["entity"] in PUBLIC_ENTITIES}


def examples() -> list[tuple[str, set[Pair]]]:
    from rasa.shared.nlu.training_data.loading import load_data

    out = []
    for name in ("tests/nlu/heldout.yml", "tests/nlu/entities_real.yml"):
        for m in load_data(str(ROOT / name)).intent_examples:
            if m.get("entities"):
                want = {(e["entity"], str(e["value"])) for e in m.get("entities")}
                out.append((normalize(m.get("text")), want))
    return out


def score(extractor: Callable[[str], set[Pair]], data: Iterable[tuple[str, set[Pair]]]) -> dict[str, Any]:
    tp = fp = fn = 0
    latencies, misses = [], []
    for text, want in data:
        t0 = time.perf_counter()
        got = extractor(text)
        latencies.append(time.perf_counter() - t0)
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
        if got != want:
            misses.append({"text": text, "missing": sorted(want - got), "extra": sorted(got - want)})
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {
        "precision": round(p, 3),
        "recall": round(r, 3),
        "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "misses": misses,
    }


def main() -> int:
    data = examples()
    t0 = time.perf_counter()
    nlp = spacy_pipeline()
    build_s = time.perf_counter() - t0
    rows = {
        "rules (bot/extract.py)": score(rules_extract, data),
        "spaCy zh + jieba + EntityRuler": score(spacy_extract(nlp), data),
    }
    rows["spaCy zh + jieba + EntityRuler"]["pipeline_build_s"] = round(build_s, 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "nlu_entities.json").write_text(
        json.dumps({"benchmark": "nlu_entities", "examples": len(data), "rows": rows}, indent=2, ensure_ascii=False)
    )
    print(f"entities on {len(data)} annotated examples (heldout.yml, entities_real.yml) (values, contract entities):")
    for name, row in rows.items():
        print(
            f"  {name:<32} P {row['precision']:.3f}  R {row['recall']:.3f}  F1 {row['f1']:.3f}  p50 {row['p50_ms']} ms"
        )
        for miss in row["misses"]:
            print(f"      {miss['text']}  missing {miss['missing']}  extra {miss['extra']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
