"""WeChat Official Account: the callback protocol in, the customer-service message API out.

In: WeChat's published scheme (SHA1 over the sorted token, timestamp and nonce; in safe mode also
the Encrypt field, which is AES-256-CBC under the EncodingAESKey) through wechatpy's signer and
crypto, and the XML parsed by xmltodict with entities disabled. Out: a provider interface like
SMS's: `outbox` records, `wechat` calls the API (access token from `stable_token`, which several
gateway workers can share without invalidating each other's).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import xmltodict  # type: ignore[import-untyped]
from sqlalchemy.orm import Session
from wechatpy.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException  # type: ignore[import-untyped]
from wechatpy.utils import WeChatSigner  # type: ignore[import-untyped]

from ledger.db import Database
from ledger.masking import mask
from ledger.models import WeChatOutbound
from settings import Settings

log = logging.getLogger("api.wechat")
OPENID_MAX = 64


class BadSignature(Exception):
    """The push is not from WeChat (or not for this account): answer 403, store nothing."""


class BadPush(ValueError):
    """The body is not a push we can read."""


def signature(*parts: str) -> str:
    """WeChat's signature: SHA1 over the parts sorted and joined."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def valid_signature(token: str, sig: str | None, timestamp: str, nonce: str, *extra: str) -> bool:
    if not token or not sig:
        return False
    return hmac.compare_digest(signature(token, timestamp, nonce, *extra).encode(), sig.encode())


@dataclass(frozen=True)
class Push:
    """One message or event pushed by WeChat, reduced to what the gateway uses."""

    openid: str
    kind: str  # text | voice | image | video | location | link | event | ...
    created: str  # CreateTime, seconds, as sent
    msg_id: str | None = None
    text: str | None = None  # Content, or a voice message's Recognition
    event: str | None = None  # subscribe | unsubscribe | CLICK | SCAN | VIEW | ...
    event_key: str | None = None
    menu_id: str | None = None  # bizmsgmenuid: the holder tapped a choice of a menu message we sent

    @property
    def dedupe_key(self) -> str:
        """MsgId for messages; FromUserName + CreateTime for events (which carry no MsgId)."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.openid}:{self.created}"


def _fields(xml: str | bytes) -> dict[str, Any]:
    try:
        root = xmltodict.parse(xml)  # entities disabled by default: no XML bombs, no external files
    except Exception as exc:  # expat errors, "entities are disabled"
        raise BadPush(f"not readable XML: {type(exc).__name__}") from None
    fields = root.get("xml") if isinstance(root, dict) else None
    if not isinstance(fields, dict):
        raise BadPush("not a WeChat push (no <xml> root)")
    return fields


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_push(xml: str | bytes) -> Push:
    fields = _fields(xml)
    openid, kind, created = _text(fields, "FromUserName"), _text(fields, "MsgType"), _text(fields, "CreateTime")
    if not openid or len(openid) > OPENID_MAX or not kind or not created or not created.isdigit():
        raise BadPush("FromUserName, MsgType and CreateTime are required")
    kind = kind.lower()
    text = _text(fields, "Content") if kind == "text" else _text(fields, "Recognition") if kind == "voice" else None
    return Push(
        openid=openid,
        kind=kind,
        created=created,
        msg_id=_text(fields, "MsgId"),
        text=text,
        event=_text(fields, "Event"),
        event_key=_text(fields, "EventKey"),
        menu_id=_text(fields, "bizmsgmenuid"),
    )


def _crypto(settings: Settings) -> WeChatCrypto:
    return WeChatCrypto(
        settings.wechat_token.get_secret_value(),
        settings.wechat_encoding_aes_key.get_secret_value(),
        settings.wechat_app_id,
    )


def read_push(settings: Settings, body: bytes, params: Mapping[str, str]) -> Push:
    """Check the signature(s), decrypt in safe mode, parse. BadSignature or BadPush otherwise.

    With an EncodingAESKey configured, plain pushes are refused: a plain push's body is not
    covered by its signature, an encrypted one's is.
    """
    token = settings.wechat_token.get_secret_value()
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
    if not valid_signature(token, params.get("signature"), timestamp, nonce):
        raise BadSignature("signature")
    aes_key = settings.wechat_encoding_aes_key.get_secret_value()
    if params.get("encrypt_type", "raw") != "aes":
        if aes_key:
            raise BadSignature("a plain push where safe mode is configured")
        return parse_push(body)
    if not aes_key:
        raise BadPush("an encrypted push, but no WECHAT_ENCODING_AES_KEY is configured")
    encrypted = _text(_fields(body), "Encrypt")
    if not encrypted:
        raise BadPush("an encrypted push without Encrypt")
    if not valid_signature(token, params.get("msg_signature"), timestamp, nonce, encrypted):
        raise BadSignature("msg_signature")
    try:
        plain = _crypto(settings).decrypt_message(body, params["msg_signature"], timestamp, nonce)
    except (InvalidSignatureException, InvalidAppIdException):
        raise BadSignature("decryption") from None
    except Exception as exc:  # bad padding, bad base64: not something WeChat sent
        raise BadPush(f"cannot decrypt: {type(exc).__name__}") from None
    return parse_push(plain)


def push_xml(fields: Mapping[str, str | int]) -> str:
    """A push as WeChat writes one (for tests and the local push script)."""
    return str(xmltodict.unparse({"xml": dict(fields)}, full_document=False))


def encrypt_push(settings: Settings, xml: str, nonce: str, timestamp: str) -> str:
    """WeChat's safe-mode envelope around `xml` (Encrypt, MsgSignature, TimeStamp, Nonce)."""
    return str(_crypto(settings).encrypt_message(xml, nonce, timestamp))


Buttons = list[dict[str, str]] | None


def as_text(text: str, buttons: Buttons) -> str:
    """Quick replies as words the holder can type back: the record of a menu message, and what a
    provider without menus would send."""
    if not buttons:
        return text
    return f"{text}\n（可回复：{'、'.join(b['title'] for b in buttons)}）"


# ---- out: the customer-service and template message APIs ----


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode


class WeChatSender(Protocol):
    name: str

    async def send_text(self, openid: str, text: str, buttons: Buttons = None) -> None: ...

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str | None) -> None: ...


class OutboxSender:
    """Local provider: sends nothing, keeps what would have been sent (GET /v1/wechat/outbox)."""

    name = "outbox"

    async def send_text(self, openid: str, text: str, buttons: Buttons = None) -> None:
        return None

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str | None) -> None:
        return None


_tokens: dict[str, tuple[str, float]] = {}  # app id -> (access token, monotonic expiry)
EXPIRED_TOKEN = {40001, 40014, 42001}


class WeChatApi:
    """The Official Account's message APIs over httpx."""

    name = "wechat"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.app_id = settings.wechat_app_id
        self.secret = settings.wechat_app_secret.get_secret_value()
        self.base = settings.wechat_api_base.rstrip("/")
        self.http = http

    async def _token(self, refresh: bool = False) -> str:
        cached = _tokens.get(self.app_id)
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
        resp = await self.http.post(
            f"{self.base}/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.app_id,
                "secret": self.secret,
                "force_refresh": refresh,
            },
            timeout=10,
        )
        resp.raise_for_status()
        body = resp.json()
        if "access_token" not in body:
            raise WeChatApiError(int(body.get("errcode", -1)), str(body.get("errmsg", "")))
        _tokens[self.app_id] = (str(body["access_token"]), time.monotonic() + int(body.get("expires_in", 7200)) - 300)
        return str(body["access_token"])

    async def _post(self, path: str, payload: dict[str, Any]) -> None:
        for attempt in range(2):
            token = await self._token(refresh=attempt > 0)
            resp = await self.http.post(f"{self.base}{path}", params={"access_token": token}, json=payload, timeout=10)
            resp.raise_for_status()
            body = resp.json()
            errcode = int(body.get("errcode", 0))
            if errcode == 0:
                return
            if errcode not in EXPIRED_TOKEN or attempt:
                raise WeChatApiError(errcode, str(body.get("errmsg", "")))

    async def send_text(self, openid: str, text: str, buttons: Buttons = None) -> None:
        if not buttons:
            payload: dict[str, Any] = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        else:  # a menu message: a tap comes back as a text push carrying the choice's id
            choices = [{"id": b["payload"].lstrip("/"), "content": b["title"]} for b in buttons]
            payload = {"touser": openid, "msgtype": "msgmenu", "msgmenu": {"head_content": text, "list": choices}}
        await self._post("/cgi-bin/message/custom/send", payload)

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str | None) -> None:
        payload: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {k: {"value": v} for k, v in data.items()},
        }
        if url:
            payload["url"] = url
        await self._post("/cgi-bin/message/template/send", payload)


def sender_for(settings: Settings, http: httpx.AsyncClient) -> WeChatSender:
    if settings.wechat_provider == "wechat":
        return WeChatApi(settings, http)
    return OutboxSender()


async def deliver(
    settings: Settings,
    http: httpx.AsyncClient,
    openid: str,
    text: str,
    conversation_id: str | None = None,
    template: tuple[str, dict[str, str], str | None] | None = None,
    buttons: Buttons = None,
    *,
    db: Database,
) -> WeChatOutbound:
    """Send one message (a customer-service text, or a template when given) and record it, sent or failed."""
    sender = sender_for(settings, http)
    status, error = "sent", None
    try:
        if template is None:
            await sender.send_text(openid, text, buttons)
        else:
            await sender.send_template(openid, *template)
    except (httpx.HTTPError, WeChatApiError, ValueError) as exc:
        status, error = "failed", str(exc)[:128]
        log.warning("wechat send failed", extra={"conversation_id": conversation_id, "reason": error})
    record = WeChatOutbound(
        openid=openid,
        kind="text" if template is None else "template",
        text=mask(as_text(text, buttons)),
        provider=sender.name,
        status=status,
        error=error,
        conversation_id=conversation_id,
    )

    def store(session: Session) -> None:
        session.add(record)

    await db.run(store)
    return record


async def deliver_to_conversation(
    settings: Settings, http: httpx.AsyncClient, conversation_id: str, text: str, *, db: Database
) -> None:
    """An agent's (already guarded and stored) reply, to the follower the conversation belongs to."""
    from ledger.wechat import follower_of

    def openid(session: Session) -> str | None:
        follower = follower_of(session, conversation_id)
        return follower.openid if follower else None

    found = await db.run(openid, readonly=True)
    if found is not None:
        await deliver(settings, http, found, text, conversation_id, db=db)
