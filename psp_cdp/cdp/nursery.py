"""Nurseries as an implementation detail.

trio wraps every error that leaves a nursery in an ExceptionGroup. Where a nursery is
an inner detail of a context manager or helper, callers should see the one error
that happened, as if there were no nursery: :func:`single_error` unwraps groups that
hold exactly one error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["single_error", "leaf_errors"]


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The errors inside (nested) exception groups, in order."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]


@contextmanager
def single_error() -> Iterator[None]:
    """Re-raise a group holding exactly one error as that error."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = leaf_errors(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
