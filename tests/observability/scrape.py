"""Reading a process's /metrics into plain values, and the metric names PromQL names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics
from prometheus_client.parser import text_string_to_metric_families

_openmetrics_families: Callable[[str], Iterator[Metric]] = (
    openmetrics.text_string_to_metric_families
)


@dataclass(frozen=True)
class Scrape:
    """Every sample of one /metrics answer: (name, labels) -> value."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in self.samples.items()
            if sample == name and wanted <= sample_labels
        )

    def has(self, name: str, **labels: str) -> bool:
        wanted = set(labels.items())
        return any(s == name and wanted <= lb for s, lb in self.samples)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(lb)[label] for s, lb in self.samples if s == name and label in dict(lb)}


def scrape(base_url: str) -> Scrape:
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return Scrape(samples)


def parse_exposition(content_type: str, text: str) -> list[Metric]:
    """The families of a /metrics body, by the parser of the format its Content-Type names."""
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media_type == "application/openmetrics-text":
        return list(_openmetrics_families(text))
    assert media_type == "text/plain", content_type
    return list(text_string_to_metric_families(text))


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, labels and keywords left out)."""
    text = _STRINGS.sub(" ", expression)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        start = match.start()
        if start and (text[start - 1].isalnum() or text[start - 1] in "_."):
            continue  # the tail of a number like 1e3 or of another token
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function
        if word.lower() not in _KEYWORDS:
            names.add(word)
    return names


def panel_expressions(dashboard: Mapping[str, object]) -> Iterable[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, rows' panels included."""
    panels = list(dashboard.get("panels", []))  # type: ignore[call-overload]
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield str(panel["title"]), str(target["expr"])
