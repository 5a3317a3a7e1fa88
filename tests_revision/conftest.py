"""The revision's own configuration against the checklist (``[revision]``): one test per key."""
