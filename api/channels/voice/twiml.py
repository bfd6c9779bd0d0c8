"""TwiML for the voice webhooks: `<Response>` with `<Say>`, `<Gather>`, `<Enqueue>`, `<Dial>`, `<Hangup/>`.

Written with the standard library's ElementTree (it escapes the text). The attribute names and
values are those of Twilio's TwiML reference: `<Say voice="Polly.Zhiyu" language="cmn-CN">` (the
Mandarin voice of Twilio's text-to-speech table) and `<Gather input="speech dtmf"
language="cmn-Hans-CN">` (Mandarin, simplified, mainland, as Twilio's speech recognition names it),
with the prompt nested in the `<Gather>` so the caller may speak or press a key over it (barge-in).
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

SAY_VOICE = "Polly.Zhiyu"
SAY_LANGUAGE = "cmn-CN"
GATHER_LANGUAGE = "cmn-Hans-CN"
SPEECH_TIMEOUT = "2"  # seconds of silence that end what the caller says
GATHER_TIMEOUT = "6"  # seconds to wait for the caller to begin
QUEUE = "collections"  # the agents' queue (<Enqueue>)


class Twiml:
    """One TwiML answer, built verb by verb."""

    def __init__(self) -> None:
        self.root = ET.Element("Response")

    def say(self, text: str, parent: ET.Element | None = None) -> Twiml:
        if text:
            el = ET.SubElement(self.root if parent is None else parent, "Say", voice=SAY_VOICE, language=SAY_LANGUAGE)
            el.text = text
        return self

    def gather(self, action: str, *texts: str, keypad_only: bool = False) -> Twiml:
        """Speak `texts` while listening; what the caller says or keys is posted to `action`, and so is
        silence (actionOnEmptyResult), so the gateway decides the re-prompt."""
        el = ET.SubElement(
            self.root,
            "Gather",
            input="dtmf" if keypad_only else "speech dtmf",
            action=action,
            method="POST",
            language=GATHER_LANGUAGE,
            timeout=GATHER_TIMEOUT,
            speechTimeout=SPEECH_TIMEOUT,
            finishOnKey="#",
            actionOnEmptyResult="true",
        )
        for text in texts:
            self.say(text, el)
        return self

    def enqueue(self, queue: str = QUEUE) -> Twiml:
        ET.SubElement(self.root, "Enqueue").text = queue
        return self

    def dial(self, number: str) -> Twiml:
        ET.SubElement(self.root, "Dial").text = number
        return self

    def hangup(self) -> Twiml:
        ET.SubElement(self.root, "Hangup")
        return self

    def __str__(self) -> str:
        return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(self.root, encoding="unicode")
