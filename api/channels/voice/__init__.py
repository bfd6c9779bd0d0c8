"""Voice: a call as a conversation (Twilio's Voice webhook protocol; VOICE_PROVIDER=outbox|twilio).

- `routes`: POST /v1/voice/inbound, /gather, /status (TwiML answers) and GET /v1/voice/outbox;
- `channel`: `VoiceChannel` (receive, identify, deliver, seed);
- `twiml`: the TwiML verbs; `provider`: placing calls. Voice campaigns are placed at call time by jobs/voice_dialer.py.
"""

from api.channels.voice.channel import VoiceChannel
from api.channels.voice.routes import router

__all__ = ["VoiceChannel", "router"]
