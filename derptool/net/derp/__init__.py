"""The DERP protocol: its wire format (:mod:`.frames`); the client that speaks it builds on that."""
