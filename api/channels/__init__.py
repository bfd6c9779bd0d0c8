"""The channels a holder writes from: one package each (web, sms, wechat, voice), one class each,
all implementing the small protocol in api/channels/base.py."""
