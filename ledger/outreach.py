"""Which of our own contacts a conversation starts from: a signed link's attempt, or a reply to a campaign SMS.

The channels (api/channels/) start such a conversation in context through one seed_from_link; the
lookups are here, so every channel asks the same question of the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import campaigns, conversations
from ledger.accounts import audit
from ledger.models import Account, Campaign, ContactAttempt, Conversation

OUTBOUND_CONTACT = "EXTERNAL_outbound_contact"  # the intent the bot greets an outbound contact with


@dataclass(frozen=True)
class Contact:
    """Our outbound contact a conversation continues: whose account, which campaign ("" for none)."""

    account_id: str
    campaign_id: str
    phone: str = ""  # the number the contact went to (the account holder's)
    attempt_pk: int | None = None

    def entities(self) -> dict[str, str]:
        """What the bot's outbound-contact greeting is told."""
        return {"account": self.account_id, "campaign": self.campaign_id}


def from_attempt(session: Session, attempt_id: int) -> Contact | None:
    """The contact a signed link names (web link token, WeChat scene), or None if there is no such attempt."""
    row = session.execute(
        select(ContactAttempt, Account, Campaign)
        .join(Account, Account.id == ContactAttempt.account_pk)
        .outerjoin(Campaign, Campaign.id == ContactAttempt.campaign_pk)
        .where(ContactAttempt.id == attempt_id)
    ).first()
    if row is None:
        return None
    attempt, account, campaign = row
    return Contact(account.account_id, campaign.campaign_id if campaign else "", account.cardholder.phone, attempt.id)


def from_reply(session: Session, conversation_id: str, phone: str, since: datetime) -> Contact | None:
    """A first message from a phone a campaign SMS went to since `since`: that contact; None for a
    conversation already under way or a phone we did not write to."""
    if conversations.find(session, conversation_id) is not None:
        return None
    found = campaigns.recent_contact(session, phone, since)
    return Contact(found[0], found[1], phone) if found else None


def claim_for_link(session: Session, conv: Conversation, contact: Contact, action: str) -> None:
    """A conversation a signed link reached: the holder's phone claimed unless already verified, audited."""
    if conv.verified_at is None:
        conversations.claim_phone(session, conv, contact.phone)
    audit(session, conv.conversation_id, action, contact.account_id)
