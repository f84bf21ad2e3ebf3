"""Writing policy files: one comment-keeping editor (:mod:`.document`) and one module per edit, each with its
plan, its fragment and its apply: :mod:`.omit`, :mod:`.region`, :mod:`.grants`."""
