"""Per-stage timings of an analysis, logged as one JSON line per analysis.

    with timing.collect() as stages:      # around one analysis
        with timing.stage("network"):     # anywhere below it, in any module
            ...
    timing.log_analysis(stages)

Stages outside a `collect` block cost one context-variable lookup and record nothing. The log
lines (logger "dermalens.timing", prefix "analysis-timing") are what `make bench` reads to break
an analysis down into decode / preprocess / network / heatmap / encode / database.
"""

import contextvars
import json
import logging
import time
from contextlib import contextmanager

logger = logging.getLogger("dermalens.timing")
_stages: contextvars.ContextVar[dict | None] = contextvars.ContextVar("stages", default=None)


@contextmanager
def collect():
    stages: dict[str, float] = {}
    token = _stages.set(stages)
    try:
        yield stages
    finally:
        _stages.reset(token)


@contextmanager
def stage(name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        stages = _stages.get()
        if stages is not None:
            stages[name] = stages.get(name, 0.0) + (time.perf_counter() - started) * 1000.0


def log_analysis(stages: dict[str, float]) -> None:
    logger.info("analysis-timing %s", json.dumps({k: round(v, 2) for k, v in stages.items()}))
