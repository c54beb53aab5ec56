"""The shared Lua prelude, cut down to what one script uses.

Redis runs a script's whole text on every call, so each definition in ``_lib.lua`` costs every call
(a string concatenation for a key name, a closure for a function) whether the script uses it or not.
Each script gets the prelude's top-level statements it names, directly or through another statement it
keeps, in their original order.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z_]\w*")
_COMMENT = re.compile(r"--[^\n]*")
_STRING = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")  # a string literal names nothing (SIGNAL is base .. 'signal')
_DEFINES = re.compile(r"local (?:function )?([A-Za-z_]\w*)")


def statements(prelude: str) -> list[tuple[str, str]]:
    """The prelude's top-level statements as (name defined, text); each starts with ``local`` in column 0,
    the comment lines right above it included."""
    found: list[tuple[str, str]] = []
    comments: list[str] = []
    current: list[str] | None = None
    name = ""
    for line in prelude.splitlines():
        if line.startswith("local "):
            if current is not None:
                found.append((name, "\n".join(current)))
            match = _DEFINES.match(line)
            if match is None:
                raise ValueError(f"cannot tell what this prelude line defines: {line!r}")
            name, current, comments = match.group(1), [*comments, line], []
        elif line.startswith("--") and (current is None or current[-1].strip() == "end" or not current[-1].strip()):
            comments.append(line)  # introduces the next statement
        elif current is not None:
            current.append(line)
    if current is not None:
        found.append((name, "\n".join(current)))
    return found


def lean(prelude: list[tuple[str, str]], body: str) -> str:
    """The statements of ``prelude`` that ``body`` needs (a name it mentions, and what those mention)."""
    needed: set[str] = set()
    wanted = _names(body)
    by_name = {name: text for name, text in prelude}
    while wanted:
        name = wanted.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        wanted |= _names(by_name[name]) - needed
    return "\n".join(text for name, text in prelude if name in needed)


def _names(code: str) -> set[str]:
    """The names ``code`` mentions outside its comments and string literals (the scripts hold no "--" inside a
    string, nor a quote inside a string or a comment)."""
    return set(_NAME.findall(_STRING.sub("", _COMMENT.sub("", code))))
