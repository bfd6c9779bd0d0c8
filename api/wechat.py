"""Where the chat core's delivery (api/chat/delivery.py) still finds the WeChat client; it lives in
api/channels/wechat/provider.py now."""

from api.channels.wechat.provider import deliver_to_conversation

__all__ = ["deliver_to_conversation"]
