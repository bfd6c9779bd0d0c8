"""Where the chat core's delivery (api/chat/delivery.py) still finds the SMS client; it lives in
api/channels/sms/provider.py now."""

from api.channels.sms.provider import provider_for, send_sms

__all__ = ["provider_for", "send_sms"]
