# The one place where the shared core bridges MicroPython and CPython.
# On MicroPython `const()` folds constants at compile time; on CPython it is
# the identity. Every other module imports `const` from here.
#
# The `type: ignore`s cover both type-check setups: against the ESP32 stubs
# (`micropython` exists; its `const` is positional-only, which this fallback
# cannot be on MicroPython) and against CPython's typeshed (no `micropython`).
# `unused-ignore` keeps warn_unused_ignores quiet in whichever setup needs less.
try:
    from micropython import const  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # CPython

    def const(x):  # type: ignore[no-redef, misc, unused-ignore]
        return x
