"""WeChat Official Account: the callback (handshake, pushes), the message APIs, WeChatChannel and
the template reminders campaigns send."""
