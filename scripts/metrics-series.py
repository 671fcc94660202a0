#!/usr/bin/env python3
"""Turns metrics files that keysat-deliver wrote into promtool's input_series (YAML).

    scripts/metrics-series.py [--minutes N] SPEC...

Each SPEC is START-END:FILE or START:FILE (minutes from 0). START-END: a run wrote FILE at
every minute from START to END (its *_timestamp_seconds values move with each minute);
START:FILE: one run wrote it at START and none after, so node_exporter goes on exporting the
same values. Each file's times are re-based so that its own run ended at that minute
(promtool's clock starts at 0); the last SPEC holds until --minutes. A series absent from a
file is absent ('_') at those minutes. Parsed with prometheus_client's own parser, so what
Prometheus could not read fails here.
"""
import argparse
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def samples(path):
    """{(name, labels): value} of one metrics file, and when its run ended."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    ended = values.get(("keysat_webhooks_last_run_timestamp_seconds", ()))
    if ended is None:
        sys.exit(f"metrics-series: {path} has no keysat_webhooks_last_run_timestamp_seconds")
    return values, ended


def parse_spec(spec):
    span, _, path = spec.partition(":")
    start, _, end = span.partition("-")
    return int(start), (int(end) if end else None), path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, required=True)
    parser.add_argument("specs", nargs="+")
    arguments = parser.parse_args()
    specs = [parse_spec(spec) for spec in arguments.specs]
    files = {path: samples(path) for _, _, path in specs}
    # At each minute: the file last written, and the minute its run wrote it.
    timeline = [None] * (arguments.minutes + 1)
    for index, (start, end, path) in enumerate(specs):
        until = specs[index + 1][0] - 1 if index + 1 < len(specs) else arguments.minutes
        for minute in range(start, min(until, arguments.minutes) + 1):
            written = min(minute, end) if end is not None else start
            timeline[minute] = (path, written)
    keys = sorted({key for values, _ in files.values() for key in values})
    print("input_series:")
    for name, labels in keys:
        points = []
        for entry in timeline:
            if entry is None or (name, labels) not in files[entry[0]][0]:
                points.append("_")
                continue
            values, ended = files[entry[0]]
            value = values[(name, labels)]
            if name.endswith("_timestamp_seconds"):
                value = value - ended + entry[1] * 60
            points.append(repr(round(value, 6)))
        selector = name + "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in labels) + "}"
        print(f"  - series: {json.dumps(selector)}")
        print(f"    values: {json.dumps(' '.join(points))}")


if __name__ == "__main__":
    main()
