"""The actions decide from what the NLU made of a message (intent, entities, cues), never from the
words: every Chinese keyword list lives once, in bot/keywords.yml."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ACTIONS = Path(__file__).resolve().parents[2] / "actions"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _cjk(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(CJK.search(node.value))


def _matches_words(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):  # "去世" in text
        return _cjk(node.left) and any(isinstance(o, ast.In | ast.NotIn) for o in node.ops)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):  # ("去世", "过世")
        return sum(_cjk(e) for e in node.elts) >= 2
    if isinstance(node, ast.Call):  # re.compile("去世|过世")
        return getattr(node.func, "attr", getattr(node.func, "id", "")) == "compile" and any(_cjk(a) for a in node.args)
    return False


def keyword_matching(source: str) -> list[int]:
    """Lines that test text for Chinese words or hold a collection or pattern of Chinese words."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source)) if _matches_words(node))


def test_the_check_finds_a_keyword_list() -> None:
    assert keyword_matching('WORDS = ("去世", "过世")\nif "走了" in text: pass\nP = re.compile("去世")\n') == [1, 2, 3]
    assert keyword_matching('buttons = [{"title": "转人工", "payload": "/request_human"}]\n') == []


def test_no_action_matches_chinese_words() -> None:
    found = {p.name: keyword_matching(p.read_text(encoding="utf-8")) for p in sorted(ACTIONS.glob("*.py"))}
    assert {name: lines for name, lines in found.items() if lines} == {}
