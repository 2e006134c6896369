"""Discord's side of the wire: the interactions protocol (signatures, payloads, answers) and the
REST client. Knows nothing of points; imports only platform."""
