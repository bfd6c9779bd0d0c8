"""SMS: the provider's webhooks (inbound, delivery receipts), its clients (outbox, Twilio), SmsChannel."""
