"""The web chat: the page's session, its messages, signed SMS links that open it in context."""
