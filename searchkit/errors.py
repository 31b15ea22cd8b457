"""Exceptions raised by searchkit.

Bad input is a ``ValueError`` (or ``TypeError`` for a wrong type) whose message names the
field and the value; it is raised before any compute starts.
"""

from __future__ import annotations


class BudgetExceededError(RuntimeError):
    """The search asked for more model forwards than its NFE budget allows.

    Raised *before* the step that would overspend, so the spent compute never exceeds the
    budget.
    """


class NonFiniteRewardError(ValueError):
    """A reward returned NaN or an infinite value; the message names the step and particle."""


class RegistryError(KeyError):
    """An unknown name, or a name registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


class ConfigError(ValueError):
    """A benchmark configuration that cannot run; the message names the field and the value."""


class BudgetError(ValueError):
    """A compute budget that a strategy cannot meet."""


class OutputFolderError(ValueError):
    """An output folder that holds results of another run, or cannot be written."""


class LatentDataError(ValueError):
    """A latent-reward dataset that is missing, malformed or inconsistent; names the file."""


class CheckpointError(ValueError):
    """A model checkpoint that is missing, malformed or cannot be fetched; names the file."""


class ContractError(ValueError):
    """A backend or reward that breaks its interface (a wrong declaration, an output of the
    wrong type, shape or values); the message names the plugin, what it gave and what was
    expected."""
