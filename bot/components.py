"""Rasa graph components: text normalisation, Chinese entity extraction, the keyword stage and cues."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import contact_phrases, keywords
from bot.extract import extract
from bot.keywords import CUES, KEYWORDS
from bot.normalize import normalize
from ledger.clock import process_clock


class _Component(GraphComponent):
    """A component built from its config alone: none of these train or keep anything."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(config)


def _annotate(messages: list[Message], key: str, read: Callable[[str], Any]) -> list[Message]:
    """Set `key` in each message's parse data to what `read` makes of its text."""
    for message in messages:
        message.set(key, read(message.get(TEXT) or ""), add_to_output=True)
    return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False)
class TextNormalizer(_Component):
    """Rewrites the message text before tokenisation (NFKC, traditional -> simplified, emoji, shorthand)."""

    def _apply(self, message: Message) -> None:
        text = message.get(TEXT)
        if text:
            message.set(TEXT, normalize(text))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._apply(example)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._apply(message)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class ChineseEntityExtractor(_Component, EntityExtractorMixin):
    """Amounts, installment counts, dates (with the resolved ISO date), last-four digits and phones."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"timezone": None}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._tz = ZoneInfo(config.get("timezone") or os.environ.get("APP_TIMEZONE", "Asia/Shanghai"))

    def process(self, messages: list[Message]) -> list[Message]:
        today = process_clock(self._tz.key).today()
        for message in messages:
            text = message.get(TEXT) or ""
            found = extract(text, today)
            if found:
                message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages


class _KeywordStage(_Component):
    """A component that reads bot/keywords.yml (the one place the assistant's keyword lists live)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"keywords": str(KEYWORDS)}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._keywords = keywords.load(config["keywords"])


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class KeywordIntentOverride(_KeywordStage):
    """Second stage: unambiguous, high-stakes phrases (bot/keywords.yml `intents`) decide the intent."""

    def match(self, text: str) -> str | None:
        return self._keywords.intent(text)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = self.match(message.get(TEXT) or "")
            if intent is None:
                continue
            # The others are kept for reading, halved: the fallback's ambiguity check must not undo a
            # decided intent because the classifier also liked another one ("有一笔不是我刷的 要准备什么材料").
            ranking = [
                {**r, "confidence": float(r.get("confidence") or 0.0) / 2}
                for r in message.get(INTENT_RANKING_KEY) or []
                if r.get("name") != intent
            ]
            chosen = {"name": intent, "confidence": 1.0}
            message.set(INTENT, chosen, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [chosen, *ranking], add_to_output=True)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class MessageCues(_KeywordStage):
    """What a message says beyond its intent (a death, a wrong number, the channels a stop request
    names...), as cue names in the parse data (`cues`), from bot/keywords.yml. The actions decide
    from these names and never match the words themselves."""

    def process(self, messages: list[Message]) -> list[Message]:
        return _annotate(messages, CUES, self._keywords.cues_in)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class ContactPhrases(_Component):
    """What a contact request says about channels, times and places ("短信可以发 电话白天别打"), as
    clauses in the parse data (`contact`), by the rules kept as data in bot/contact_phrases.yml.
    The action hands them to the ledger (ledger/contact_preferences.py), which decides."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"phrases": str(contact_phrases.PHRASES)}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._rules = contact_phrases.load(config["phrases"])

    def process(self, messages: list[Message]) -> list[Message]:
        return _annotate(messages, contact_phrases.CONTACT, self._rules.read)
