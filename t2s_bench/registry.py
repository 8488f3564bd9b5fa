"""One registry class for everything pluggable: systems, backends, datasets, metrics.

An entry is an object (a factory, a class, a metric) or a lazy `"module:attr"` string imported on
first use, so registering the built-ins costs no imports. Third parties add entries with the
`register` decorator in a module named in $T2S_PLUGINS, or through a package entry point of the
registry's group (`name = "pkg.module:attr"`). A name can be registered once; `replace=True` says
on purpose.

`check_options` compares keyword options with a factory's signature, so a wrong option is one
clear sentence naming the valid ones instead of a TypeError from deep inside a constructor.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(ValueError):
    """Unknown or duplicate names, and options a factory does not take."""


class OptionError(RegistryError):
    """An option the chosen system or backend does not take."""


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._plugins_loaded = False

    # ------------------------------------------------------------ adding
    def register(self, name: str, obj: T | str | None = None, *, replace: bool = False) -> Any:
        """`registry.register("name", obj)`, or `@registry.register("name")` as a decorator;
        `obj` may be a lazy "module:attr" string."""
        if obj is None:
            def decorate(target: T) -> T:
                self._add(name, target, replace)
                return target

            return decorate
        self._add(name, obj, replace)
        return obj

    def _add(self, name: str, obj: T | str, replace: bool) -> None:
        current = self._entries.get(name)
        if current is not None and not replace and current is not obj and not _same_target(current, obj):
            raise RegistryError(f"{self.kind} {name!r} is already registered ({_describe(current)})")
        self._entries[name] = obj

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    # ------------------------------------------------------------ looking up
    def get(self, name: str) -> T:
        if name not in self._entries:
            self.load_plugins()
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = _import_target(entry)
            self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._entries)

    def values(self) -> list[T]:
        """Every entry, resolved, in registration order."""
        self.load_plugins()
        return [self.get(name) for name in list(self._entries)]

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self.load_plugins()
        return name in self._entries

    def create(self, name: str, **options: Any) -> Any:
        """Call the entry `name` with `options`, after checking them against its signature."""
        factory = self.get(name)
        check_options(factory, options, f"{self.kind} {name!r}")  # type: ignore[arg-type]
        return factory(**options)  # type: ignore[operator]

    def load_plugins(self, *, force: bool = False) -> None:
        """Entry points of this registry's group, and the modules listed in $T2S_PLUGINS."""
        if self._plugins_loaded and not force:
            return
        self._plugins_loaded = True
        if self.entry_point_group:
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.entry_point_group):
                if ":" in ep.value:  # name = "module:attr": a lazy entry under the entry point's name
                    if ep.name not in self._entries:
                        self._entries[ep.name] = ep.value
                else:  # a module that registers its entries when imported
                    importlib.import_module(ep.value)
        for module in filter(None, (m.strip() for m in os.environ.get("T2S_PLUGINS", "").split(","))):
            importlib.import_module(module)


# ---------------------------------------------------------------- options


def accepted_options(factory: Callable[..., Any]) -> tuple[set[str], bool]:
    """(named keyword parameters, whether it also takes arbitrary **kwargs); a class is read
    through its __init__. Extra names a factory forwards are declared with `forwards_options`."""
    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    params = inspect.signature(target).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params)
    forwarded = getattr(factory, "forwarded_options", None)
    if open_ended and forwarded is not None:
        return names | set(forwarded), False
    return names, open_ended


def forwards_options(names: Iterable[str]) -> Callable[[T], T]:
    """Declare the option names a factory's **kwargs accepts (it forwards them elsewhere)."""

    def mark(factory: T) -> T:
        factory.forwarded_options = frozenset(names)  # type: ignore[attr-defined]
        return factory

    return mark


def check_options(factory: Callable[..., Any], options: dict[str, Any], what: str,
                  *, ignore: Iterable[str] = ()) -> None:
    names, open_ended = accepted_options(factory)
    if open_ended:
        return
    unknown = sorted(set(options) - names - set(ignore))
    if unknown:
        valid = ", ".join(sorted(names - set(ignore))) or "none"
        plural = "s" if len(unknown) > 1 else ""
        raise OptionError(f"{what} does not take the option{plural} {', '.join(unknown)}; its options: {valid}")


# ---------------------------------------------------------------- helpers


def _import_target(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _same_target(a: object, b: object) -> bool:
    """A lazy entry and the object it names are the same registration (a module re-imported)."""
    def key(x: object) -> str:
        return x if isinstance(x, str) else f"{getattr(x, '__module__', '')}:{getattr(x, '__qualname__', '')}"

    return key(a) == key(b)


def _describe(entry: object) -> str:
    return entry if isinstance(entry, str) else f"{getattr(entry, '__module__', '?')}.{getattr(entry, '__qualname__', entry)}"
