"""On the wire: STUN's format (:mod:`.stun`) and its one socket (:mod:`.stunclient`), name resolution and TLS
(:mod:`.dial`), netcheck's measurement (:mod:`.netcheck`), NAT classification (:mod:`.nat`), and the checks of
a DERP server (:mod:`.check`)."""
