"""The fixed sets of values the ledger's status and kind columns hold, as types.

The columns stay `String` in the database (no migration; a new value is a new member here and a
change to the code that writes it); mypy checks that only these values are written or compared.
"""

from __future__ import annotations

from typing import Literal

# -- plans and promises
PlanType = Literal["installment", "deferment", "personalized"]
PlanStatus = Literal["proposed", "pending_approval", "active", "completed", "broken", "cancelled"]
CreatedVia = Literal["chat", "agent", "api"]  # who made a plan or took a promise
InstalmentStatus = Literal["due", "paid", "missed"]
PromiseStatus = Literal["open", "kept", "broken"]

# -- contact: what a person asked, and who may be written to
ContactChannel = Literal["sms", "calls", "wechat", "voice", "third_party"]  # a contact preference's channel
PreferenceValue = Literal["allowed", "opted_out", "restricted", "forbidden"]
PreferenceSource = Literal["chat", "sms", "agent", "import"]
SuppressedChannel = Literal["sms", "wechat", "call", "voice", "all"]  # a number silenced on
SuppressionReason = Literal["opt_out", "wrong_number"]

# -- requests, hardship, holds
RequestKind = Literal["stop_contact", "deceased", "dispute", "identity_theft", "wrong_number", "third_party"]
RequestStatus = Literal["open", "done"]
HardshipKind = Literal["illness", "job_loss", "business", "family", "disaster", "other"]
HoldKind = Literal["dispute", "deceased", "legal_hold"]

# -- conversations
Channel = Literal["web", "sms", "wechat", "voice"]  # where a conversation takes place
Mode = Literal["bot", "human"]  # who has the conversation: the bot, or a person
Sender = Literal["user", "bot", "agent"]
HandoffStatus = Literal["waiting", "claimed", "closed", "released", "recovered", "withdrawn"]

# -- money
EntryKind = Literal["charge", "payment", "interest", "late_fee"]

# -- outbound contact
ContactPurpose = Literal["campaign", "notice", "agent", "reply"]
AttemptStatus = Literal["queued", "sending", "sent", "skipped", "failed"]
AttemptChannel = Literal["sms", "wechat", "call"]  # call: placed by the voice dialer

# -- agents
AgentRole = Literal["agent", "supervisor"]
Presence = Literal["available", "away"]
