"""A message's way through the gateway (docs/architecture.md), in parts a reader can name:

- `text`: what a holder's message may be (`clean_text`);
- `rasa`: the client for Rasa, pinning a conversation to a server, one timeout and admission
  policy for every call;
- `delivery`: the live hub for pages and agents, and an agent's reply out on SMS or WeChat;
- `turn`: the turn itself, in named steps (store inbound, ask the bot or leave it to a person,
  store outbound; the holding reply once when the bot is away), in order per conversation (`locks`);
- `transcript`: what each step writes, one transaction each (the holder's message, the replies
  guarded and stored, an agent's message checked and stored), over the ledger's functions;
- the database: one `ledger.db.Database` for the process, reached as `db.run(work, readonly=...)`;
- `service`: `ChatService`, which puts them together, and `ChatDep` for routes.
"""

from api.chat.rasa import RasaClient, RasaDown
from api.chat.replies import Reply, TurnResult, chat_out
from api.chat.service import ChatDep, ChatService, chat_service
from api.chat.text import BUTTON_PAYLOAD, BadInput, clean_text
from api.chat.transcript import store_bot_replies
from api.chat.turn import HOLDING_REPLY
from ledger.errors import DuplicateMessage, WrongChannel

__all__ = [
    "BUTTON_PAYLOAD",
    "HOLDING_REPLY",
    "BadInput",
    "ChatDep",
    "ChatService",
    "DuplicateMessage",
    "RasaClient",
    "RasaDown",
    "Reply",
    "TurnResult",
    "WrongChannel",
    "chat_out",
    "chat_service",
    "clean_text",
    "store_bot_replies",
]
