"""Twilio's webhook protocol, shared by the SMS and voice channels: the request signature
(HMAC-SHA1 of the URL and the sorted form, as Twilio documents it) and, with the local outbox
provider, the one dev secret every provider webhook needs instead."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.errors import ApiError
from settings import Settings

Form = TypeVar("Form", bound=BaseModel)

SIGNATURE_HEADERS = [
    {
        "name": "X-SMS-Dev-Secret",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "the outbox provider (SMS_PROVIDER / VOICE_PROVIDER=outbox): must equal SMS_INBOUND_DEV_SECRET",
    },
    {
        "name": "X-Twilio-Signature",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "the twilio provider: Twilio's signature of the URL and form",
    },
]


def _no_nulls(schema: Any) -> Any:
    """A form field is sent or left out, never null: `str | None` documented as a plain string."""
    if isinstance(schema, dict):
        options = schema.get("anyOf")
        if isinstance(options, list) and {"type": "null"} in options:
            kept = [o for o in options if o != {"type": "null"}]
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            return _no_nulls({**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept})
        return {k: _no_nulls(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_no_nulls(v) for v in schema]
    return schema


def form_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a provider webhook: `model` as a form body, and the signature headers."""
    content = {"application/x-www-form-urlencoded": {"schema": _no_nulls(model.model_json_schema())}}
    return {"requestBody": {"required": True, "content": content}, "parameters": SIGNATURE_HEADERS}


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """Twilio's documented scheme: HMAC-SHA1 over the URL then each POST param name+value, sorted by name."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_signature(url: str, params: Mapping[str, str], auth_token: str, signature: str | None) -> bool:
    if not signature or not auth_token:
        return False
    return hmac.compare_digest(twilio_signature(url, params, auth_token), signature)


def dev_secret_ok(expected: str, given: str | None) -> bool:
    """Unset refuses everything: an outbox gateway without the secret takes no provider webhook."""
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def signed_form(request: Request, settings: Settings, provider: str, model: type[Form]) -> Form:
    """The provider's form as `model`, once its signature (`provider` "twilio") or the dev secret
    (the outbox provider) is checked: 403 otherwise, before any field is read; 422 if the fields
    are not valid."""
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    if provider == "twilio":
        # Twilio signs the URL it called; behind a proxy that is the public URL, not ours.
        url = f"{settings.public_base_url.rstrip('/')}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        token = settings.twilio_auth_token.get_secret_value()
        if not valid_twilio_signature(url, params, token, request.headers.get("X-Twilio-Signature")):
            raise ApiError(403, "bad_signature", "the request signature is not valid")
    elif not dev_secret_ok(settings.sms_inbound_dev_secret.get_secret_value(), request.headers.get("X-SMS-Dev-Secret")):
        # The local provider has no signature: only whoever holds var/secrets.env may play the phone.
        raise ApiError(403, "bad_signature", "provider webhooks need header X-SMS-Dev-Secret (SMS_INBOUND_DEV_SECRET)")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise ApiError(422, "validation_failed", "the form is not valid", errors=problems) from None


class TwilioRest:
    """Twilio's REST API for the account in settings: a form POST with HTTP basic auth (account
    SID, auth token) creating a resource (a message, a call); answers the new resource's sid."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.sid = settings.twilio_account_sid
        self.token = settings.twilio_auth_token.get_secret_value()
        self.sender = settings.twilio_from_number
        self.base = settings.twilio_api_base.rstrip("/")
        self.http = http

    async def create(self, resource: str, data: dict[str, Any]) -> str:
        resp = await self.http.post(
            f"{self.base}/2010-04-01/Accounts/{self.sid}/{resource}.json",
            data=data,
            auth=(self.sid, self.token),
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["sid"])
