"""The output guard: every bot and agent message passes here before it is stored or delivered.

Two conduct rules (docs/security.md): no account detail to a conversation that has not verified the holder
(no amount, no day count, not the holder's name), and no threatening or exaggerated phrasing to
anyone. The guard reads a normalised copy of the message (full-width folded, Chinese numerals as
digits, currency words as 元, spaces gone) and never removes words before matching: "不会" in
front of a threat does not make it safe. The only exception is a sentence that is, word for word,
one of the bot's own reassurance responses (REASSURANCE_RESPONSES, by response id in domain.yml).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cn2an
import yaml
from opencc import OpenCC

DOMAIN_FILE = Path(__file__).resolve().parents[1] / "domain.yml"
RESPONSE_FILES = tuple(sorted((Path(__file__).resolve().parents[1] / "data" / "responses").glob("*.yml")))
# The process-question knowledge base (data/responses/faq.yml): fixed answers about the process,
# none about an account, that name courts, 律师函 or family in order to reassure. Each is exempt
# by its response id, like the responses below.
KNOWLEDGE_BASE_PREFIX = "utter_faq/"
# Responses that mention family, 恶意透支 or a lawsuit in order to reassure; let through only when a
# reply is exactly one of them (its variables filled), never because of a word such as "不会".
REASSURANCE_RESPONSES = (
    "utter_consequences",
    "utter_refusal",
    "utter_stop_contact_third_party",
    "utter_stop_contact_all",
    "utter_identity_legitimacy",
)

_NUM = r"\d+(?:\.\d+)?"
_CURRENCY = re.compile(r"人民币|RMB|CNY|块钱|块|[￥¥]|元钱", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_INVISIBLE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff]+")

# What tells an unverified reader about a debt (matched on the normalised text).
ACCOUNT_DETAIL = re.compile(
    rf"{_NUM}[万千百]?元"  # 1200元, 1.2万元, 一千二百元, 1200块, 1,234.50元
    rf"|元{_NUM}"  # ￥1234, RMB 1234
    rf"|(?:欠|还款|还钱|需还|应还|要还|待还|未还|还清|金额|本金|利息|罚息|违约金|滞纳金|手续费|账单|余额|额度|共计|合计|总计|一共|总共|付款|缴纳)"
    r"[^，。！？,.!?；;]{0,6}?\d"  # 欠我们1200, 本金 1500
    rf"|{_NUM}[万千]"  # 3万, 2千
    rf"|\d+(?:个)?(?:天|日)"  # 逾期45天, 四十五天
    r"|已逾期|逾期了|已经逾期|拖欠"
)
# Threats, false or exaggerated consequences, exposure, pressure (matched on the normalised text).
FORBIDDEN = re.compile(
    "|".join(
        (
            r"警察|公安|派出所|刑警|报警|民警|经侦",
            r"坐牢|牢饭|判刑|拘留|监狱|蹲大牢|刑事责任|刑事|抓你|抓人|逮捕|立案|通缉|犯罪|诈骗罪|恶意透支",
            r"失信|黑名单|老赖|限制高消费|限高|限制出行|坐不了",
            r"上门|家访|外访|登门|到你家|去你家|来你家|找到你家|到你单位|去你单位|到你公司|去你公司",
            r"(?:通知|告诉|告知|联系|打给|打电话给|找|发给|转告|让)[^。！？]{0,8}?"
            r"(?:家人|家里人|家属|父母|爸妈|老婆|老公|配偶|子女|孩子|亲戚|亲友|朋友|同事|领导|单位|公司|老板|紧急联系人|通讯录|村委|居委)",
            r"(?:家人|家属|父母|亲戚|朋友|同事|领导|单位|公司|紧急联系人)[^。！？]{0,6}?(?:都会知道|会知道|知道你|收到)",
            r"通讯录|曝光|朋友圈|公开你|公示",
            r"律师函|法院传票|传票|强制执行|查封|冻结你|拍卖",
            r"后果自负|走着瞧|别怪我们|有你好看|不客气了|吃不了兜着走|给你点颜色",
            r"借钱还|借贷还|网贷|借呗|以贷养贷|套现",
        )
    )
)
SAFE_UNVERIFIED = "为保护您的信息，需要先核实身份。请提供您在本行登记的手机号码。"
SAFE_REPLACEMENT = "抱歉，这条消息未能发送，工作人员会尽快跟进。"
# What the agent console shows when it refuses an agent's message (the agents read Chinese).
WHY = {
    "forbidden_phrase": "消息含威胁或夸大后果的说法，未发送",
    "unverified_detail": "对方尚未核实身份，不能提及金额、天数或持卡人姓名，未发送",
}


@dataclass(frozen=True)
class Verdict:
    text: str  # what may be sent: the original, or a safe replacement
    blocked: str | None  # why the original was replaced ("forbidden_phrase" | "unverified_detail"), or None
    matched: str | None = None  # the words that tripped it, for the agent and the log

    @property
    def why(self) -> str | None:
        if self.blocked is None:
            return None
        return f"{WHY[self.blocked]}（“{self.matched}”）" if self.matched else WHY[self.blocked]


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def simplified(text: str) -> str:
    """Traditional characters as simplified ones: the bot answers in traditional characters a
    holder who writes them (bot/channel.py), and its own answers must still be recognised."""
    return str(_t2s().convert(text))


def normalise(text: str) -> str:
    """What the guard reads: simplified characters (a threat in traditional ones is the same
    threat), full-width folded (NFKC), spaces and invisible characters gone, thousands separators
    dropped, currency words as 元, Chinese numerals as digits."""
    folded = unicodedata.normalize("NFKC", simplified(text))
    folded = _INVISIBLE.sub("", folded)
    folded = _THOUSANDS.sub("", folded)
    folded = _CURRENCY.sub("元", folded)
    return _CN_NUMERAL.sub(_as_digits, folded)


# A run of Chinese numeral characters. A lone 一 is a word (一下, 一起, 哪一天) far more often than a
# number, so it stays; every other run (四十五, 一千二百, 两, 十) is read as digits.
_CN_NUMERAL = re.compile(r"[零〇一二两三四五六七八九十百千万亿点]+")


def _as_digits(match: re.Match[str]) -> str:
    run = match.group(0)
    if run in ("一", "万", "亿", "点", "百", "千") or run.startswith("点"):
        return run
    try:
        return str(cn2an.cn2an(run, "smart"))
    except Exception:  # 一点五万: the number, then its unit as written (1.5万)
        head, unit = run[:-1], run[-1]
        if unit in "万千" and head:
            try:
                return f"{cn2an.cn2an(head, 'smart')}{unit}"
            except Exception:  # not a number after all (万一): read it as written
                return run
        return run


def check(text: str, verified: bool, *, names: Iterable[str] = ()) -> Verdict:
    """Let a message (bot's or agent's) through, or replace it with a safe one and say why.

    `names`: the names of the holders the conversation is tied to, never said before verification.
    """
    return _check(text, verified, tuple(names))


# The bot says the same few hundred sentences again and again: each is read once, not per turn.
@lru_cache(maxsize=1024)
def _check(text: str, verified: bool, names: tuple[str, ...]) -> Verdict:
    plain = normalise(text)
    threat = FORBIDDEN.search(plain)
    if threat and not is_reassurance(text):
        return Verdict(SAFE_REPLACEMENT, "forbidden_phrase", threat.group(0))
    if not verified:
        detail = ACCOUNT_DETAIL.search(plain)
        if detail and not is_reassurance(text):
            return Verdict(SAFE_UNVERIFIED, "unverified_detail", detail.group(0))
        for name in names:
            found = _name_in(plain, name)
            if found:
                return Verdict(SAFE_UNVERIFIED, "unverified_detail", found)
    return Verdict(text, None)


def _name_in(plain: str, name: str) -> str | None:
    name = normalise(name)
    if len(name) >= 2 and name in plain:
        return name
    if name:  # 王女士, 王先生: the surname with a form of address names the holder too
        polite = re.search(re.escape(name[0]) + r"(?:先生|女士|小姐|总|老师)", plain)
        if polite:
            return polite.group(0)
    return None


def is_reassurance(text: str) -> bool:
    """Whether `text` is, word for word, one of the reassurance responses, its variables filled with
    nothing forbidden (an agent cannot smuggle a threat into a copied answer's slot)."""
    plain = simplified(text.strip())
    for pattern in _reassurance_patterns():
        match = pattern.fullmatch(plain)
        if match and not any(FORBIDDEN.search(normalise(v)) for v in match.groups()):
            return True
    return False


def _responses() -> dict[str, list[dict[str, object]]]:
    responses: dict[str, list[dict[str, object]]] = {}
    for path in (DOMAIN_FILE, *RESPONSE_FILES):
        try:
            responses.update(yaml.safe_load(path.read_text(encoding="utf-8")).get("responses") or {})
        except (OSError, yaml.YAMLError, AttributeError):
            continue  # no such file: nothing in it is exempt
    return responses


@lru_cache(maxsize=1)
def _reassurance_patterns() -> tuple[re.Pattern[str], ...]:
    responses = _responses()
    exempt = [*REASSURANCE_RESPONSES, *(r for r in responses if r.startswith(KNOWLEDGE_BASE_PREFIX))]
    patterns = []
    for response_id in exempt:
        for variant in responses.get(response_id, []):
            template = str(variant.get("text", "")).strip()
            if not template:
                continue
            # Literal text exactly; each {variable} is a short run without sentence ends.
            parts = re.split(r"\{[a-z_]+\}", template)
            patterns.append(re.compile(r"([^。！？\n]{1,40})".join(re.escape(p) for p in parts)))
    return tuple(patterns)


def reminder_problem(text: str, institution_names: Iterable[str], opt_out: tuple[str, ...]) -> str | None:
    """Why a rendered reminder (SMS or WeChat template) may not go out, or None.

    A reminder may be read by anyone who sees the phone: it names the bank, says how to opt out
    (any of `opt_out`), and carries no amount or debt detail, however the digits are written.
    """
    if not any(name and name in text for name in institution_names):
        return "the message must name the institution"
    if not any(word in text.upper() for word in opt_out):
        return f"the message must say how to opt out ({' or '.join(opt_out)})"
    if ACCOUNT_DETAIL.search(normalise(text)) or "逾期" in text or "欠款" in text:
        return "the message must not carry amounts or debt details a third party could read"
    return None
