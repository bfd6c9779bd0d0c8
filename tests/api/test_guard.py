"""The output guard: no account detail before verification, no threats to anyone, however written."""

from __future__ import annotations

import pytest
import yaml

from api import guard

RESPONSES = yaml.safe_load(guard.DOMAIN_FILE.read_text(encoding="utf-8"))["responses"]
FILL = {"institution": "示例银行信用卡中心", "hotline": "400-000-0000", "app_name": "示例银行App"}

# Threats, false consequences, exposure and pressure: blocked in every conversation, verified or
# not, from the bot or an agent. Negations in front do not make them safe.
THREATS = [
    "再不还就让你坐牢",
    "你不会想坐牢吧",
    "不还的话警察会上门找你",
    "我们已经报警了",
    "公安会来找你",
    "派出所的人明天联系你",
    "你这是恶意透支，要判刑的",
    "小心被拘留",
    "要承担刑事责任",
    "让你上失信名单",
    "你将被列入黑名单",
    "你就是个老赖",
    "以后限制高消费，高铁都坐不了",
    "明天上门找你",
    "我们的人下周去你家",
    "安排外访人员过去",
    "通知你的紧急联系人和单位领导",
    "我们会通知你的家人和单位，后果自负",
    "不还就打电话给你老婆",
    "我们会联系你父母",
    "告诉你同事你欠钱不还",
    "你的领导都会知道",
    "把你的事发到你通讯录里的每个人",
    "在朋友圈曝光你",
    "给你发律师函",
    "律 师 函已经在路上了",
    "法院传票马上寄到",
    "申请强制执行，查封你的房子",
    "冻结你所有的银行卡",
    "后果自负",
    "别怪我们不客气了",
    "走着瞧",
    "先去网贷借钱还上",
    "用借呗套现还款",
    "警察会上门",  # full-width
    "坐 牢",  # spaced out
    "我们绝不会放过你，警察会来",
    "并不是吓唬你，公安已经立案",
    "我们不会报警的，但你家人会知道",
    "你不还，我们就去你单位",
]

# What tells an unverified reader about the debt.
DISCLOSURES = [
    "您需还款一千二百元",
    "欠我们1200块",
    "￥1,234.50",
    "RMB 1234",
    "欠我们1200",
    "已经逾期四十五天了",
    "逾期45天",
    "本金 1500",
    "请尽快还款两千五百块",
    "共计15645",
    "一共欠了三万",
    "利息495.00元",
    "违约金１５０元",  # full-width digits
    "还款1.2万元",
    "需还一点五万",
    "您的账户已逾期",
    "您拖欠的款项",
    "王芳您好，请回电",
    "王女士，请尽快处理",
]


@pytest.mark.parametrize("text", THREATS)
def test_threats_are_blocked_for_everyone(text: str) -> None:
    for verified in (False, True):
        verdict = guard.check(text, verified=verified, names=["王芳"])
        assert verdict.blocked == "forbidden_phrase", (text, verified)
        assert verdict.text == guard.SAFE_REPLACEMENT and verdict.matched


@pytest.mark.parametrize("text", DISCLOSURES)
def test_account_detail_never_reaches_an_unverified_conversation(text: str) -> None:
    verdict = guard.check(text, verified=False, names=["王芳"])
    assert verdict.blocked == "unverified_detail", text
    assert verdict.text == guard.SAFE_UNVERIFIED and "元" not in verdict.text
    assert guard.check(text, verified=True, names=["王芳"]).blocked is None


def test_the_table_is_the_size_the_issue_asks_for() -> None:
    assert len(THREATS) + len(DISCLOSURES) >= 40


@pytest.mark.parametrize("response_id", guard.REASSURANCE_RESPONSES)
def test_the_bots_own_reassurances_go_through(response_id: str) -> None:
    for variant in RESPONSES.get(response_id, []):
        text = variant["text"].format(**FILL)
        assert guard.check(text, verified=False).blocked is None, response_id
        assert guard.is_reassurance(text)


def test_a_reassurance_edited_by_a_word_is_checked_in_full() -> None:
    original = RESPONSES["utter_consequences"][0]["text"]
    assert guard.check(original, verified=False).blocked is None
    assert guard.check(original + "不过警察可能会上门。", verified=False).blocked == "forbidden_phrase"
    assert guard.check("我们也不会向您的家人透露，但会上门。", verified=True).blocked == "forbidden_phrase"


@pytest.mark.parametrize(
    "text",
    [
        "请问有什么可以帮您？",
        "请提供您在本行登记的11位手机号码。",
        "您可以一起看看有什么办法。",
        "请告诉我哪一天方便。",
        "他行转账可能需要1-3个工作日。",
        "您还可以再试2次。",
        "金融消费者投诉热线12378。",
    ],
)
def test_ordinary_sentences_pass_before_verification(text: str) -> None:
    assert guard.check(text, verified=False, names=["王芳"]) == guard.Verdict(text, None)


def test_normalising_reads_but_never_changes_what_is_sent() -> None:
    assert guard.normalise("逾期 四十五 天，欠 ￥1,234.50") == "逾期45天,欠元1234.50"
    text = "好的，谢谢您。"
    assert guard.check(text, verified=False).text == text


def test_the_agent_is_told_why() -> None:
    verdict = guard.check("明天上门找你", verified=True)
    assert verdict.why is not None and "上门" in verdict.why


def test_the_knowledge_base_answers_pass_but_not_with_a_threat_in_a_filled_slot() -> None:
    answer = (
        "真正的起诉由法院送达传票或应诉通知，可以通过法院的官方电话或官方网站核实案号。确实收到的话请按时应诉，"
        "也可以先联系本行官方客服{hotline}协商。要您转账“撤诉”“销案”的都是诈骗。"
    )
    assert guard.check(answer.format(hotline="95588"), verified=False).blocked is None
    smuggled = answer.format(hotline="95588，不还警察就上门")
    assert guard.check(smuggled, verified=False).blocked == "forbidden_phrase"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("【示例银行】您有一笔待处理事项，详询95555。退订回T", None),
        ("【示例银行】您有一笔待处理事项，详询95555。回复TD退订", None),
        ("您有一笔待处理事项，详询95555。退订回T", "name the institution"),
        ("【示例银行】您有一笔待处理事项，详询95555。", "opt out"),
        ("【示例银行】您本期应还１，２００元，退订回T", "amounts"),  # full-width digits and comma
        ("【示例银行】您本期应还一千二百元，退订回T", "amounts"),  # Chinese numerals
        ("【示例银行】您的欠款请尽快处理，退订回T", "amounts"),
    ],
)
def test_a_reminder_names_the_bank_offers_opt_out_and_shows_no_debt(text: str, problem: str | None) -> None:
    found = guard.reminder_problem(text, ("示例银行", "示例银行股份有限公司"), opt_out=("退订", "TD"))
    assert (found is None) if problem is None else (problem in (found or ""))


def test_traditional_characters_are_read_as_the_same_words() -> None:
    """The bot answers a holder who writes traditional characters in them; the guard read only
    simplified ones, so a threat typed in traditional passed and the bot's own knowledge-base
    answer, converted, was refused before verification."""
    from opencc import OpenCC

    from api.guard import check

    assert check("再不還錢就發律師函給你", verified=True).blocked == "forbidden_phrase"
    assert check("您已逾期45天，需還款2,145.00元", verified=False).blocked == "unverified_detail"
    grace = (
        "本行在还款日后有3天宽限期，在这期间还上不算逾期、不收违约金；"
        "还差10.00元以内的小额未还，也按全额还款处理。最稳妥的还是在还款日当天还清。"
    )
    assert check(grace, verified=False).blocked is None  # the bot's own answer, word for word
    assert check(OpenCC("s2tw").convert(grace), verified=False).blocked is None  # and as a traditional writer reads it
