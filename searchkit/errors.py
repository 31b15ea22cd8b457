"""Exceptions raised by searchkit.

Every error searchkit raises on purpose, for input it refuses or a state the user can fix,
derives from :class:`SearchkitError`; the command line prints those in one or two lines and
exits with status 2, and shows a traceback for anything else (a bug). Bad input is also a
``ValueError`` (or ``TypeError`` for a wrong type) whose message names the field and the
value; it is raised before any compute starts. Messages speak the Python API's language
(``resume=True``); the command line translates them to its flags.
"""

from __future__ import annotations


class SearchkitError(Exception):
    """Base of every error searchkit raises on purpose: input it refuses, a state to fix."""


class InputError(SearchkitError, ValueError):
    """A value that is refused: the message names the field and the value."""


class InputTypeError(SearchkitError, TypeError):
    """A value of the wrong type: the message names the field and the value."""


class UsageError(InputError):
    """A command line that cannot be parsed (an unknown option, a malformed value)."""


class FileFormatError(SearchkitError, ValueError):
    """A file that is not what it must be (not UTF-8, not JSON, a wrong schema).

    The message names the file and, where there is one, the position (line and column).
    """


class MissingFileError(SearchkitError, FileNotFoundError):
    """A file or folder that the input names and that does not exist; names the path."""


class BudgetExceededError(SearchkitError, RuntimeError):
    """The search asked for more model forwards than its NFE budget allows.

    Raised *before* the step that would overspend, so the spent compute never exceeds the
    budget.
    """


class NonFiniteRewardError(SearchkitError, ValueError):
    """A reward returned NaN or an infinite value; the message names the step and particle."""


class RegistryError(SearchkitError, KeyError):
    """An unknown name, or a name registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


class ConfigError(SearchkitError, ValueError):
    """A benchmark configuration that cannot run; the message names the field and the value."""


class BudgetError(SearchkitError, ValueError):
    """A compute budget that a strategy cannot meet."""


class OutputFolderError(SearchkitError, ValueError):
    """An output folder that holds results of another run, or cannot be written."""


class LatentDataError(SearchkitError, ValueError):
    """A latent-reward dataset that is missing, malformed or inconsistent; names the file."""


class CheckpointError(SearchkitError, ValueError):
    """A model checkpoint that is missing, malformed or cannot be fetched; names the file."""


class ContractError(ValueError):
    """A backend or reward that breaks its interface (a wrong declaration, an output of the
    wrong type, shape or values); the message names the plugin, what it gave and what was
    expected."""
