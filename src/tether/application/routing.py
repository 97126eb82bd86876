"""A fast path in front of Werkzeug's URL matcher.

Werkzeug's ``MapAdapter.match`` binds an adapter and tries rules one by one;
this is a dict lookup for static paths and one regex per candidate rule
otherwise (bench/micro_bench.py measures both). It answers only when the
answer is certain to be Werkzeug's: a static path with exactly one rule, or a
path that the regex of exactly one rule matches, with the request's method
allowed and no redirect, default or host involved.
Everything else (404, 405, strict-slash and merge-slash redirects, ambiguous
paths, converters that reject a value) returns ``None`` and goes to Werkzeug.
"""

from __future__ import annotations

import re
import typing as t

from werkzeug.routing import Map, Rule, ValidationError

from .werkzeug_private import RULE_VARIABLE, rule_converters

__all__ = ["FastRouter"]

Match = tuple[Rule, dict[str, t.Any]]


class _Dynamic:
    __slots__ = ("rule", "regex", "converters", "safe")

    def __init__(self, rule: Rule, regex: re.Pattern[str], converters: dict[str, t.Any], safe: bool) -> None:
        self.rule = rule
        self.regex = regex
        self.converters = converters
        self.safe = safe


def _is_safe(rule: Rule, endpoints_with_defaults: set[str]) -> bool:
    return not (
        rule.defaults
        or rule.redirect_to is not None
        or rule.alias
        or rule.endpoint in endpoints_with_defaults
    )


def _compile(rule: Rule, source: str) -> tuple[re.Pattern[str], dict[str, t.Any], bool] | None:
    """The full-path regex of ``source`` (``rule.rule`` or a variant of it), the
    rule's converters, and whether every converter stays within one segment."""
    converters = rule_converters(rule)
    if converters is None:
        return None
    pattern = ["^"]
    position = 0
    isolating = True
    for match in RULE_VARIABLE.finditer(source):
        pattern.append(re.escape(source[position:match.start()]))
        name = match.group(1)
        converter = converters.get(name)
        if converter is None:
            return None
        isolating = isolating and getattr(converter, "part_isolating", True)
        pattern.append(f"(?P<{name}>{converter.regex})")
        position = match.end()
    pattern.append(re.escape(source[position:]))
    pattern.append(r"\Z")  # not "$", which also matches before a final newline
    try:
        return re.compile("".join(pattern)), converters, isolating
    except re.error:
        return None


class FastRouter:
    """Exact-answer tables built from a Werkzeug ``Map``; see the module docstring."""

    def __init__(self, url_map: Map) -> None:
        #: The one rule of each static path it answers for.
        self.static: dict[str, Rule] = {}
        #: Static paths it never answers for: Werkzeug must (several rules,
        #: defaults, or a redirect to the path with a slash).
        self.to_werkzeug: set[str] = set()
        self.buckets: dict[tuple[int, str], list[_Dynamic]] = {}
        self.wild: dict[str, list[_Dynamic]] = {}
        self.enabled = not url_map.host_matching
        rules = [r for r in url_map.iter_rules() if not r.websocket]
        with_defaults = {r.endpoint for r in rules if r.defaults}
        for rule in rules:
            if rule.host or rule.subdomain:
                self.enabled = False
                continue
            safe = _is_safe(rule, with_defaults)
            if rule.rule.endswith("/") and len(rule.rule) > 1:
                # Werkzeug may redirect the slash-less path here instead of
                # matching another rule: never answer for it.
                self._add(rule, rule.rule[:-1], safe=False)
            elif not rule.strict_slashes:
                # Werkzeug matches this rule with a trailing slash too, ahead
                # of a rule that would take the slash (a ``path``).
                self._add(rule, rule.rule + "/", safe=False)
            self._add(rule, rule.rule, safe)
        #: Every bucket's candidates, merged once: the lists a path of that
        #: segment count and first segment must be checked against.
        self.merged = {key: self._candidates(key) for key in self.buckets}

    def _add(self, rule: Rule, source: str, safe: bool) -> None:
        if "<" not in source:  # static, even with defaults (which are arguments too)
            if safe and source not in self.static and source not in self.to_werkzeug:
                self.static[source] = rule
            else:
                self.static.pop(source, None)
                self.to_werkzeug.add(source)
            return
        compiled = _compile(rule, source)
        if compiled is None:
            self.enabled = False
            return
        regex, converters, isolating = compiled
        entry = _Dynamic(rule, regex, converters, safe)
        prefix = source[1:].partition("/")[0]
        first = prefix if "<" not in prefix else "*"
        if isolating:
            self.buckets.setdefault((source.count("/"), first), []).append(entry)
        else:
            self.wild.setdefault(first, []).append(entry)

    def _candidates(self, key: tuple[int, str]) -> list[_Dynamic]:
        count, first = key
        return [
            *self.buckets.get((count, first), ()),
            *(self.buckets.get((count, "*"), ()) if first != "*" else ()),
            *self.wild.get(first, ()),
            *(self.wild.get("*", ()) if first != "*" else ()),
        ]

    def match(self, path: str, method: str) -> Match | None:
        """The rule and converted arguments for ``path``, or ``None`` to ask Werkzeug."""
        if not self.enabled or "//" in path:
            return None
        static = self.static.get(path)
        if static is not None:
            return (static, {}) if static.methods is None or method in static.methods else None
        if path in self.to_werkzeug:
            return None
        key = (path.count("/"), path[1:].partition("/")[0])
        candidates = self.merged.get(key)
        if candidates is None:
            candidates = self._candidates(key)
        found: _Dynamic | None = None
        groups: re.Match[str] | None = None
        for entry in candidates:
            m = entry.regex.match(path)
            if m is not None:
                if found is not None:
                    return None
                found, groups = entry, m
        if found is None or not found.safe:
            return None
        rule = found.rule
        if rule.methods is not None and method not in rule.methods:
            return None
        converters = found.converters
        args = {}
        assert groups is not None
        try:
            for name, value in groups.groupdict().items():
                args[name] = converters[name].to_python(value)
        except ValidationError:
            return None
        return rule, args
