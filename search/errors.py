"""Errors a user can fix: printed as one clear line, never as a traceback wall."""


class UserError(Exception):
    """Bad input (config, data, device, budget): the message names the problem and the fix."""
