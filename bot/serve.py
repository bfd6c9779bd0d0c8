"""`rasa` with the HTTP API token taken from the environment, never from the command line.

`python -m bot.serve run --enable-api ...` runs Rasa's own CLI in this process with
`--auth-token` added from RASA_AUTH_TOKEN: the token is in no process's argv, so `ps` and
/proc/<pid>/cmdline do not show it.
"""

from __future__ import annotations

import os
import sys


def rasa_argv(args: list[str], token: str) -> list[str]:
    """What Rasa's CLI parses, in this process only. "=" form: a generated token may begin with "-",
    which argparse would take for an option."""
    return ["rasa", *args, f"--auth-token={token}"]


def main() -> None:
    token = os.environ.get("RASA_AUTH_TOKEN", "")
    if not token:
        sys.exit("RASA_AUTH_TOKEN is not set: refusing to start Rasa's HTTP API without a token")
    sys.argv = rasa_argv(sys.argv[1:], token)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
