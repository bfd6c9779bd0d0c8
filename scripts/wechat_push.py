"""Push a message to the local gateway as WeChat would (signed, encrypted when a key is set), then
print what the outbox sent back. For trying the WeChat channel without an Official Account:

    .venv/app/bin/python -m scripts.wechat_push --openid o-demo-1 你好
    .venv/app/bin/python -m scripts.wechat_push --openid o-demo-1 --event subscribe
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from urllib.parse import urlencode

import httpx
import xmltodict  # type: ignore[import-untyped]

from api.channels.wechat.provider import encrypt_push, push_xml, signature
from ledger.clock import process_clock
from settings import get_settings


def outbox(gateway: str, openid: str, admin: dict[str, str]) -> list[dict[str, str]]:
    r = httpx.get(f"{gateway}/v1/wechat/outbox", params={"openid": openid}, headers=admin, timeout=10)
    r.raise_for_status()
    return r.json()["messages"]  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", nargs="?", default="", help="the text message (omit with --event)")
    parser.add_argument("--openid", default="o-demo-follower-0001")
    parser.add_argument("--event", help="subscribe | unsubscribe | CLICK | SCAN")
    parser.add_argument("--key", default="", help="EventKey: a menu key, or qrscene_<signed token>")
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    settings = get_settings()
    token = settings.wechat_token.get_secret_value()
    now = str(int(process_clock(settings.app_timezone).now().timestamp()))  # the gateway's clock (tests: TEST_CLOCK)
    fields: dict[str, str | int] = {"ToUserName": "gh_local", "FromUserName": args.openid, "CreateTime": now}
    if args.event:
        fields.update(MsgType="event", Event=args.event, EventKey=args.key)
    else:
        fields.update(MsgType="text", Content=args.text, MsgId=str(uuid.uuid4().int)[:19])
    nonce = uuid.uuid4().hex[:10]
    params = {"timestamp": now, "nonce": nonce, "signature": signature(token, now, nonce), "openid": args.openid}
    body = push_xml(fields)
    if settings.wechat_encoding_aes_key.get_secret_value():
        envelope = xmltodict.parse(encrypt_push(settings, body, nonce, now))["xml"]
        params.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        body = push_xml({"ToUserName": "gh_local", "Encrypt": envelope["Encrypt"]})
    admin = {"Authorization": f"Bearer {settings.admin_api_token.get_secret_value()}"}
    before = len(outbox(args.gateway, args.openid, admin))
    r = httpx.post(f"{args.gateway}/v1/wechat/callback?{urlencode(params)}", content=body.encode(), timeout=10)
    print(f"callback: {r.status_code} {r.text}")
    if r.status_code != 200:
        return 1
    for _ in range(50):  # the turn runs after the answer: wait for its replies
        time.sleep(0.2)
        if len(outbox(args.gateway, args.openid, admin)) > before:
            time.sleep(0.5)  # a turn may send several messages
            for message in outbox(args.gateway, args.openid, admin)[before:]:
                print(f"[{message['kind']}] {message['text']}")
            return 0
    print("(no reply: a person may have the conversation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
