"""Several workers on one shared database and one shared rate-limit store, as a hospital group
runs DermaLens: two gunicorn workers on PostgreSQL and Redis, eight clinicians uploading at once.

Starts real PostgreSQL-backed gunicorn with the shipped model (so it loads TensorFlow). Needs the
servers `.ci/services` starts (DERMALENS_TEST_POSTGRESQL_URL, DERMALENS_TEST_REDIS_URL); skipped
without them, unless DERMALENS_REQUIRE_SERVERS is set (CI sets it, so there it fails instead).
"""

import os
import re

import pytest
import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from dermalens import audit
from dermalens.config import DEFAULT_MODEL_CARD
from tests.helpers import POSTGRESQL_URL, drop_test_databases, fresh_database
from tools import benchmark

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

REDIS_URL = os.environ.get("DERMALENS_TEST_REDIS_URL")
CLINICIANS, PER_CLINICIAN = 8, 5
LIMIT = CLINICIANS * PER_CLINICIAN  # analyses a minute from one address, across all workers


@pytest.fixture
def shared_servers(tmp_path, monkeypatch):
    if not (POSTGRESQL_URL and REDIS_URL):
        if os.environ.get("DERMALENS_REQUIRE_SERVERS"):
            pytest.fail("PostgreSQL and Redis are needed: eval \"$(.ci/services start)\"")
        pytest.skip("no PostgreSQL and Redis servers (.ci/services starts them)")
    database = fresh_database(tmp_path, postgresql=True)
    redis.Redis.from_url(REDIS_URL).flushdb()
    monkeypatch.setenv("DATABASE_URL", database)
    yield database
    drop_test_databases()


def test_two_workers_share_the_database_and_the_limits(tmp_path, shared_servers):
    tokens = benchmark.seed_database(tmp_path, str(DEFAULT_MODEL_CARD), history_rows=0,
                                     extra_users=CLINICIANS)[1:]
    server, url, _ = benchmark.start_server(
        tmp_path, benchmark.free_port(), tmp_path / "gunicorn.log", WEB_CONCURRENCY="2",
        DERMALENS_MODEL_CARD=str(DEFAULT_MODEL_CARD), RATELIMIT_STORAGE_URI=REDIS_URL,
        DERMALENS_ANALYSIS_RATE_LIMIT=f"{LIMIT} per minute")
    try:
        run = benchmark.concurrent_uploads(url, tokens, benchmark.real_size_images(10),
                                           per_user=PER_CLINICIAN, parallel=CLINICIANS)
        # Each worker alone would allow LIMIT more: one past the shared limit is refused.
        images = benchmark.real_size_images(1)
        with requests.Session() as session:
            _, refused = benchmark.post_analysis(session, url, tokens[0], images[0])
        pids = set(re.findall(r"Booting worker with pid: (\d+)", (tmp_path / "gunicorn.log").read_text()))
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert len(pids) == 2
    assert run["statuses"] == [201] * LIMIT and refused.status_code == 429
    created = [public_id for ids in run["created"].values() for public_id in ids]
    assert len(set(created)) == LIMIT and all(len(ids) == PER_CLINICIAN for ids in run["created"].values())
    engine = create_engine(shared_servers)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT public_id, image_file, heatmap_file FROM analyses")).all()
        created_events = connection.execute(text(
            "SELECT count(*) FROM audit_events WHERE action = 'analysis_created'")).scalar()
    with Session(engine) as session:
        checked, broken, _ = audit.verify_chain(session)  # two workers appending, one unbroken chain
    engine.dispose()
    assert broken is None and checked >= LIMIT
    assert sorted(row.public_id for row in stored) == sorted(created)  # all stored, none twice
    uploads = tmp_path / "uploads"
    assert all((uploads / row.image_file).is_file() and (uploads / row.heatmap_file).is_file() for row in stored)
    assert created_events == LIMIT
