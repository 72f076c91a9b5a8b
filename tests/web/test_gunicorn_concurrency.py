"""Many clinicians at once against gunicorn as deployed (2 workers, threads): nothing lost.

Starts the real app with the shipped model on a free loopback port, so it loads TensorFlow.
`make bench` runs a larger version of the same scenario and prints throughput.
"""

from pathlib import Path

import pytest
import requests

from tools import benchmark
from dermalens.config import DEFAULT_MODEL_CARD

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

USERS, PER_USER = 4, 5


def test_concurrent_uploads_from_several_users_all_land(tmp_path):
    tokens = benchmark.seed_database(tmp_path, str(DEFAULT_MODEL_CARD), history_rows=0,
                                     extra_users=USERS)[1:]
    log_path = tmp_path / "gunicorn.log"
    server, url, _ = benchmark.start_server(tmp_path, benchmark.free_port(), log_path,
                                            WEB_CONCURRENCY="2", GUNICORN_THREADS="4",
                                            DERMALENS_MODEL_CARD=str(DEFAULT_MODEL_CARD))
    try:
        run = benchmark.concurrent_uploads(url, tokens, benchmark.real_size_images(12),
                                           per_user=PER_USER, parallel=8)
        filtered = requests.get(f"{url}/api/v1/analyses?patient_ref=PT-SECRET-9", timeout=30,
                                headers={"Authorization": f"Bearer {tokens[0]}",
                                         "Referer": f"{url}/history?patient_ref=PT-SECRET-9"})
        assert filtered.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert run["statuses"] == [201] * (USERS * PER_USER)
    every_id = [public_id for ids in run["created"].values() for public_id in ids]
    assert len(set(every_id)) == USERS * PER_USER
    assert all(len(ids) == PER_USER for ids in run["created"].values())

    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'dermalens.sqlite'}")
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT users.username, analyses.public_id, image_file, heatmap_file FROM analyses "
            "JOIN users ON users.id = analyses.user_id")).all()
    assert sorted(row.public_id for row in rows) == sorted(every_id)
    uploads = tmp_path / "uploads"
    for row in rows:
        assert (uploads / row.image_file).is_file() and (uploads / row.heatmap_file).is_file()
    assert len(list(uploads.iterdir())) == 2 * USERS * PER_USER
    log = Path(log_path).read_text()
    assert "database is locked" not in log and "Traceback" not in log
    # The access log names the path, never the filter values (patient references) of its query.
    assert '"GET /api/v1/analyses HTTP/1.1" 200' in log and "PT-SECRET-9" not in log
