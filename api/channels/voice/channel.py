"""VoiceChannel: a telephone call as a conversation like the others (channel "voice").

The four responsibilities of a channel: `receive` (what the caller said or keyed, as the words the
bot expects), `identify` (the phone of the call: the number we called is proven, a caller ID is only
a claim), `deliver` (the bot's replies as TwiML: spoken, with quick replies as a keypad menu, or the
caller queued for a person) and `seed` (the opening of a call we placed, before any word of the bot).
The decisions are ledger/voice.py's; the call's state between turns is ledger/calls.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.channels.base import Channel
from api.channels.seed import seed_from_link
from api.channels.voice.schemas import VoiceForm
from api.channels.voice.twiml import Twiml
from api.chat import BadInput, ChatService, DuplicateMessage, Reply, TurnResult, clean_text
from api.schemas.common import normalise_phone
from ledger import calls, conversations, outreach, voice
from ledger.models import VoiceCall
from ledger.outreach import Contact

log = logging.getLogger("api.voice")
CHANNEL = "voice"


@dataclass(frozen=True)
class CallState:
    """What a gather turn needs to know about its call, read in one transaction."""

    call_sid: str
    direction: str
    conversation_id: str | None
    turn: int
    silences: int
    expecting: voice.Expecting | None
    menu: dict[str, str]
    last_twiml: str | None

    @classmethod
    def of(cls, call: VoiceCall) -> CallState:
        expecting: voice.Expecting | None = call.expecting  # type: ignore[assignment]
        return cls(
            call.call_sid,
            call.direction,
            call.conversation_id,
            call.turn,
            call.silences,
            expecting,
            dict(call.menu or {}),
            call.last_twiml,
        )


def hang_up(text: str = "") -> str:
    return str(Twiml().say(text).hangup())


@dataclass(frozen=True)
class VoiceTurn:
    """One gather's answer as the provider posted it, and which gather it answers (`?turn=`)."""

    form: VoiceForm
    turn: int | None


class VoiceChannel:
    name = CHANNEL

    def __init__(self, service: ChatService, provider_name: str) -> None:
        self.service = service
        self.db = service.db
        self.provider_name = provider_name

    @property
    def base(self) -> str:
        return self.service.settings.public_base_url.rstrip("/")

    def gather_url(self, turn: int) -> str:
        return f"{self.base}/v1/voice/gather?turn={turn}"

    # --- identify ----------------------------------------------------------------------------------

    async def identify(self, address: str) -> str:
        """The conversation a call (its CallSid) is; "" for a call we never heard of."""

        def look(session: Session) -> str:
            call = calls.find(session, address)
            return (call.conversation_id or "") if call is not None else ""

        return await self.db.run(look, readonly=True)

    def _tie(self, session: Session, call: VoiceCall, proven: bool) -> None:
        """The call's conversation, tied to its phone: proven for the number we called, a claim for a
        caller ID (anyone can send one), so the holder still verifies by keypad either way."""
        assert call.conversation_id is not None
        conv = conversations.get_or_create(session, call.conversation_id, CHANNEL)
        if call.phone and conv.claimed_phone is None:
            conversations.claim_phone(session, conv, call.phone, proven=proven)

    # --- a call begins -----------------------------------------------------------------------------

    async def answer(self, form: VoiceForm) -> str:
        """The provider's first request of a call: a call coming in, or one we placed being answered."""
        if (form.Direction or "inbound").startswith("outbound"):
            return await self.answered(form)
        try:
            caller: str | None = normalise_phone(form.From or "")
        except ValueError:
            caller = None  # a withheld or foreign number: the bot asks for the registered one
        short_name = self.service.policy.institution.short_name

        def start(session: Session) -> str:
            known = calls.find(session, form.CallSid)
            if known is not None:  # the provider asked again: the same answer, nothing new stored
                return known.last_twiml or hang_up()
            call = calls.start_inbound(session, form.CallSid, caller, self.provider_name)
            self._tie(session, call, proven=False)
            lines = [voice.opening(short_name, outbound=False), voice.line("identity"), voice.line("person_hint")]
            return self._opened(session, call, lines)

        try:
            return await self.db.run(start)
        except IntegrityError:  # the same CallSid at the same moment: the other request's answer

            def first(session: Session) -> str:
                known = calls.find(session, form.CallSid)
                return (known.last_twiml if known else None) or hang_up()

            return await self.db.run(first, readonly=True)

    async def answered(self, form: VoiceForm) -> str:
        """A call we placed is answered. An answering machine hears who called and a number to call
        back, nothing else, and the bot is never asked; a person hears who is calling, that the call may
        be recorded, and is asked to verify by keypad before anything about an account."""
        institution = self.service.policy.institution

        def start(session: Session) -> tuple[str, Contact | None, str | None]:
            call = calls.find(session, form.CallSid)
            if call is None:
                return hang_up(), None, None  # not a call we placed
            if call.last_twiml is not None:
                return call.last_twiml, None, None  # the provider asked again
            call.status = "in-progress"
            call.answered_by = form.AnsweredBy or call.answered_by
            if voice.is_machine(call.answered_by):
                call.last_twiml = hang_up(voice.machine_message(institution.short_name, institution.hotline))
                return call.last_twiml, None, None
            self._tie(session, call, proven=True)
            lines = [voice.opening(institution.short_name, outbound=True), voice.line("identity")]
            contact = outreach.from_attempt(session, call.attempt_pk) if call.attempt_pk is not None else None
            return self._opened(session, call, lines), contact, call.conversation_id

        twiml, contact, conversation_id = await self.db.run(start)
        if contact is not None and conversation_id:  # a person answered: the bot learns whose call this is
            await self.seed(conversation_id, contact)
        return twiml

    async def seed(self, conversation_id: str, contact: Contact) -> Sequence[Reply]:
        """The bot is told of the outbound contact, as on every channel (seed_from_link); on a call
        the channel's own opening already said who is calling, so the bot adds no greeting."""
        return list((await seed_from_link(self.service, conversation_id, contact, self.name)).replies)

    def _opened(self, session: Session, call: VoiceCall, lines: list[str]) -> str:
        """The channel's own opening, kept in the transcript like the bot's words, and the first gather."""
        assert call.conversation_id is not None
        conv = conversations.get_or_create(session, call.conversation_id, CHANNEL)
        conversations.append_message(session, conv, "bot", "".join(lines))
        call.turn, call.expecting = 1, "identity"
        call.last_twiml = str(Twiml().gather(self.gather_url(1), *lines))
        return call.last_twiml

    # --- a turn --------------------------------------------------------------------------------------

    async def receive(self, inbound: VoiceTurn) -> str:
        """What the caller said (`SpeechResult`, `Confidence`) or keyed (`Digits`) for gather `turn`:
        the TwiML the provider is answered with (the bot's replies spoken, or a re-prompt or menu)."""
        form, turn = inbound.form, inbound.turn

        def read(session: Session) -> CallState | None:
            call = calls.find(session, form.CallSid)
            return CallState.of(call) if call is not None else None

        state = await self.db.run(read, readonly=True)
        if state is None or state.conversation_id is None:
            return hang_up()
        if turn != state.turn:  # a replayed (or stale) request: answered as before, nothing is done twice
            return state.last_twiml or hang_up()
        decision = voice.decide_turn(
            form.SpeechResult, form.Confidence, form.Digits, state.silences, state.expecting, state.menu
        )
        next_turn = state.turn + 1
        expecting, menu = state.expecting, state.menu
        if decision.kind == "reprompt":
            twiml = str(Twiml().gather(self.gather_url(next_turn), voice.line("reprompt")))
        elif decision.kind == "keypad_menu":
            menu = {digit: text for digit, _, text in voice.KEYPAD_MENU}
            twiml = str(Twiml().gather(self.gather_url(next_turn), voice.keypad_menu_prompt(), keypad_only=True))
        elif decision.kind == "goodbye":
            twiml = hang_up(voice.line("goodbye"))
        else:
            try:
                text = clean_text(decision.text, self.service.settings.max_message_chars)
                result = await self.service.handle(
                    state.conversation_id, text, CHANNEL, external_id=f"{state.call_sid}:{state.turn}"
                )
            except DuplicateMessage:
                return state.last_twiml or hang_up()
            except BadInput:
                result = None
            if result is None:
                twiml = str(Twiml().gather(self.gather_url(next_turn), voice.line("reprompt")))
            else:
                twiml, expecting, menu = await self._spoken(state.conversation_id, result, next_turn)

        def save(session: Session) -> None:
            call = calls.find(session, form.CallSid)
            if call is None or call.turn != state.turn:
                return  # another request for this turn got here first
            call.turn, call.silences, call.expecting, call.menu = next_turn, decision.silences, expecting, menu
            call.last_twiml = twiml

        await self.db.run(save)
        return twiml

    # --- deliver -------------------------------------------------------------------------------------

    async def deliver(self, address: str, conversation_id: str, replies: Sequence[Reply]) -> None:
        """Nothing to send: a call's replies are spoken in the answer to the provider's request."""

    async def _spoken(
        self, conversation_id: str, result: TurnResult, turn: int
    ) -> tuple[str, voice.Expecting | None, dict[str, str]]:
        """The bot's replies spoken (amounts and dates as TTS reads them right), its quick replies as a
        keypad menu; a caller parked for a person is queued for one (`<Enqueue>`)."""
        spoken = [voice.for_speech(r.text) for r in result.replies]
        buttons = next((r.buttons for r in reversed(result.replies) if r.buttons), None) or []
        menu_text, menu = voice.spoken_menu(buttons)
        if result.mode == "human":
            return str(Twiml().say("".join(spoken)).say(voice.line("to_person")).enqueue()), None, {}
        verified = await self.db.run(
            lambda s: conversations.verified_account_id(s, conversation_id) is not None, readonly=True
        )
        expecting = voice.expecting_after(spoken, verified)
        hint = voice.keypad_hint(expecting) if expecting else None
        lines = [*spoken, *([menu_text] if menu_text else []), *([hint] if hint else [])]
        return str(Twiml().gather(self.gather_url(turn), *lines)), expecting, menu

    # --- the provider's report ----------------------------------------------------------------------

    async def status(self, form: VoiceForm) -> str | None:
        """Call progress and outcome; once the call has ended, its outcome is recorded (ledger/calls.py)."""

        def record(session: Session) -> str | None:
            call = calls.find(session, form.CallSid)
            if call is None:
                return None
            return calls.finish(session, call, (form.CallStatus or call.status).lower(), form.AnsweredBy)

        return await self.db.run(record)


if TYPE_CHECKING:  # mypy holds VoiceChannel to the protocol every channel implements

    def _a_channel(channel: VoiceChannel) -> Channel[VoiceTurn, str]:
        return channel
