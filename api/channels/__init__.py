"""The channels a holder reaches us on."""
