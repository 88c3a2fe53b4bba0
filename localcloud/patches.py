"""The local cloud's patches to moto, in one registry.

Each patch closes one gap between moto 5.2.5 and AWS (its docstring says which) and is registered by
name with ``@patch("name")``. moto's classes and backends are process-wide, so a patch is applied at
most once per process, whoever asks: ``apply_all()`` again, or calling a patch function directly (a
test that needs only one), does nothing the second time. The registry keeps the names applied, so
no patch marks a moto class (a flag on a class is also seen, through ``getattr``, on its subclasses).

Every patch wraps moto internals, so they are pinned to one moto version: applying refuses any other.
Apply them in the process that hosts the moto backends (the one running the server).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass

SUPPORTED_MOTO_VERSION = "5.2.5"
# The modules that hold patches, in the order their patches apply (each module's in definition order).
PATCH_MODULES = (
    "localcloud.compat",
    "localcloud.compat_cfn",
    "localcloud.compat_sqs",
    "localcloud.compat_rds",
    "localcloud.compat_sfn_callbacks",
    "localcloud.compat_sts",
    "localcloud.aws_events",
    "localcloud.route53",
    "localcloud.autoscaling",
    "localcloud.opscenter",
)

PatchFunction = Callable[[], None]


class MotoVersionError(RuntimeError):
    """The installed moto is not the version these patches were written and tested against."""


class DuplicatePatch(ValueError):
    """Two different functions registered under one name."""


@dataclass(frozen=True)
class Patch:
    name: str
    function: PatchFunction

    @property
    def gap(self) -> str:
        """What moto does differently from AWS, and what the patch does about it (its docstring)."""
        return inspect.getdoc(self.function) or ""

    @property
    def module(self) -> str:
        return self.function.__module__


def require_moto_version() -> None:
    import moto

    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        raise MotoVersionError(
            f"localcloud's patches wrap moto internals and are pinned to moto=={SUPPORTED_MOTO_VERSION}; "
            f"found moto=={moto.__version__}. Re-verify each patch before changing the pin."
        )


class Registry:
    """Patches by name, and which of them this process has applied."""

    def __init__(self) -> None:
        self._patches: dict[str, Patch] = {}
        self._applied: set[str] = set()
        # Reentrant: a patch may import a module that registers (or applies) another.
        self._lock = threading.RLock()

    def patch(self, name: str) -> Callable[[PatchFunction], PatchFunction]:
        """Register the decorated function as the patch ``name``; calling it applies it once."""

        def register(function: PatchFunction) -> PatchFunction:
            with self._lock:
                known = self._patches.get(name)
                if known is not None and _where(known.function) != _where(function):
                    raise DuplicatePatch(f"patch {name!r} is {_where(known.function)} already")
                self._patches[name] = Patch(name, function)

            @functools.wraps(function)
            def apply_once() -> None:
                self.apply(name)

            return apply_once

        return register

    def apply(self, name: str) -> None:
        require_moto_version()
        with self._lock:
            if name in self._applied:
                return
            self._patches[name].function()
            self._applied.add(name)

    def apply_all(self, order: Callable[[Patch], int] | None = None) -> None:
        require_moto_version()
        with self._lock:
            for each in sorted(self._patches.values(), key=order or (lambda _: 0)):
                self.apply(each.name)

    def patches(self) -> list[Patch]:
        with self._lock:
            return list(self._patches.values())

    def applied(self) -> set[str]:
        with self._lock:
            return set(self._applied)


def _where(function: PatchFunction) -> str:
    return f"{function.__module__}.{function.__qualname__}"


REGISTRY = Registry()
patch = REGISTRY.patch


def _module_order(each: Patch) -> int:
    # A module registers when first imported, and compat imports the others: order by PATCH_MODULES.
    return PATCH_MODULES.index(each.module) if each.module in PATCH_MODULES else len(PATCH_MODULES)


def load() -> list[Patch]:
    """Every patch of the local cloud (importing the modules that register them), in applying order."""
    for module in PATCH_MODULES:
        importlib.import_module(module)
    return sorted(REGISTRY.patches(), key=_module_order)


def apply_all() -> None:
    """Apply every patch not applied yet. Raises MotoVersionError on any moto but the pinned one."""
    require_moto_version()
    load()
    REGISTRY.apply_all(order=_module_order)
