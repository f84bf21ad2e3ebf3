"""On the wire: STUN's format (:mod:`.stun`) and its one socket (:mod:`.stunclient`), name resolution and TLS
(:mod:`.dial`), the HTTPS latency probe's request and answer (:mod:`.latencycheck`), one line for why a network
operation failed (:mod:`.describe`), netcheck's measurement (:mod:`.netcheck`), NAT classification (:mod:`.nat`), and
the checks of a DERP server (:mod:`.check`)."""
