"""Rasa-side code: Chinese text normalisation, entity extraction and the gateway channel."""
