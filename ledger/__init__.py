"""The ledger: pure domain logic (money, fees, plans, policy, compliance) plus persistence."""
