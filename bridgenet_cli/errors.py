"""The one exception type for mistakes a user can fix.

Library code raises :class:`BridgeNetError`; only the CLI layer turns it into a one-line message
and a non-zero exit (see ``bridgenet_cli.cli.app.main``).
"""


class BridgeNetError(Exception):
    """A user-fixable problem: ``message`` says what is wrong, ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message
