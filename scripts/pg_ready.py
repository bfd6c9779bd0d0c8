"""Exit 0 when the PostgreSQL URL given answers, 1 otherwise (used by `make test`)."""

import sys

import psycopg


def main() -> int:
    url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return 0
    except psycopg.Error:
        return 1


if __name__ == "__main__":
    sys.exit(main())
