"""Background and scheduled work: the campaign sender and its due queue, the end-of-day job, the
long-wait check. The gateway starts them in its lifespan (api/main.py); the CLIs in scripts/ run
them once. A job decides nothing itself (the ledger does) and sends through the channels' clients
(api/channels/)."""
