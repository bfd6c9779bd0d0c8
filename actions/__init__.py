"""Custom actions served by rasa-sdk. They read and write through `ledger/` only."""
