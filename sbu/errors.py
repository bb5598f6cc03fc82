"""Errors a person can act on. The CLI prints their message as one line and exits with code 2."""


class SbuError(Exception):
    """A refusal or a problem with input or configuration, explained in words."""


class NotFound(SbuError):
    pass


class Refused(SbuError):
    """The procedure or the case's state does not allow what was asked; nothing was written."""
