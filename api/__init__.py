"""The gateway: every channel, the record of every message, admin and agent APIs."""
