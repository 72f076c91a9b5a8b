"""Speed and memory of DermaLens as deployed, against a naive baseline (`make bench`).

    python -m tools.benchmark [--images 60] [--out bench-results]
    python -m tools.benchmark --databases-only --postgresql postgresql+psycopg://user@host/postgres

Starts `gunicorn -c python:dermalens.gunicorn_config app:app` (default worker settings) on a free loopback port
with a fresh instance folder and the shipped model, then measures over HTTP: cold start,
analysis end to end (p50/p95 over real-size 1024x768 JPEGs derived from the test fixtures),
each stage's share (from the app's own timing log), PDF report, the History page with 1,000
analyses, throughput at concurrency 1/2/4/8, and peak resident memory per worker. In the same
run it times a naive in-process baseline (model.predict per request, tf-keras-vis Gradcam rebuilt
per call) against our in-process analysis core. With --postgresql (a server URL; a database
dermalens_bench is made on it) it also runs the multi-user scenario on SQLite with one worker
and on PostgreSQL with two, for the throughput of each. Prints a table and writes JSON to --out.
These are measurements, not pass/fail tests.
"""

import argparse
import json
import os
import re
import socket
import statistics
# Starts this project's own gunicorn and Python with fixed arguments; no user input (bandit B404/B603).
import subprocess  # nosec B404
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from dermalens.config import DEFAULT_MODEL_CARD, PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
# Password of throw-away users in a temporary benchmark database (bandit B105).
PASSWORD = "benchmark passphrase 2026"  # nosec B105


def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def real_size_images(count: int, seed: int = 0) -> list[bytes]:
    """1024x768 JPEGs derived from the fixtures: upscaled, flipped/rotated, brightness varied."""
    rng = np.random.default_rng(seed)
    sources = [cv2.imread(str(path)) for path in sorted(FIXTURES.glob("*.jpg"))]
    images = []
    for index in range(count):
        image = cv2.resize(sources[index % len(sources)], (1024, 768), interpolation=cv2.INTER_CUBIC)
        if rng.random() < 0.5:
            image = cv2.flip(image, int(rng.integers(-1, 2)))
        image = np.clip(image.astype(np.float32) * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)
        images.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return images


class _NoClassifier:
    """Stands in for the classifier while the benchmark seeds the database (no model needed)."""

    def __init__(self, card):
        from dermalens.inference import read_model_card

        self.info, _ = read_model_card(card)
        self.gate, self.device = None, "CPU"


def seed_database(instance: Path, card: str, history_rows: int, extra_users: int = 0) -> list[str]:
    """Create users "bench" and "history" (with `history_rows` analyses), plus `extra_users`
    users "clinician-N"; returns API tokens: bench's first, then the extra users'."""
    import flask_migrate

    from dermalens import accounts, create_app, tokens
    from dermalens.extensions import db
    from dermalens.lesions import CLASSES
    from dermalens.records import Analysis

    app = create_app({"CLASSIFIER": _NoClassifier(card)}, instance_path=str(instance))
    with app.app_context():
        flask_migrate.upgrade()
        bench = accounts.create_user(db.session, "bench", PASSWORD)
        history = accounts.create_user(db.session, "history", PASSWORD)
        rng = np.random.default_rng(1)
        started = datetime(2026, 1, 1)
        for index in range(history_rows):
            probabilities = rng.dirichlet(np.ones(len(CLASSES)))
            db.session.add(Analysis(
                user_id=history.id, created_at=started + timedelta(minutes=index),
                patient_ref=f"PT-{index % 300:04d}", image_file=f"seeded_image_{index:08d}.jpg",
                heatmap_file=f"seeded_heatm_{index:08d}.png", image_width=1024, image_height=768,
                probabilities_json=json.dumps(dict(zip(CLASSES, probabilities.round(6).tolist()))),
                top_class=CLASSES[int(probabilities.argmax())],
                malignant_probability=float(probabilities[[0, 1, 4]].sum()),
                risk_category=("urgent", "routine", "monitor", "indeterminate")[index % 4],
                heatmap_class="nv", model_name="seed", model_version="0", model_sha256="0" * 64))
        db.session.commit()
        issued = [tokens.issue_token(db.session, bench, "benchmark")[1]]
        for index in range(extra_users):
            user = accounts.create_user(db.session, f"clinician-{index}", PASSWORD)
            issued.append(tokens.issue_token(db.session, user, "benchmark")[1])
        return issued


def start_server(instance: Path, port: int, log_path: Path, **settings):
    """Start gunicorn as deployed; returns (process, base URL, seconds until the model answered).

    `settings` are extra environment variables (e.g. WEB_CONCURRENCY="2")."""
    env = {**os.environ, "DERMALENS_ANALYSIS_RATE_LIMIT": "100000 per minute",
           "DERMALENS_PDF_RATE_LIMIT": "100000 per minute", "DERMALENS_LOGIN_RATE_LIMIT": "1000 per minute",
           "DERMALENS_LOGIN_ADDRESS_RATE_LIMIT": "100000 per minute", **settings,
           "DERMALENS_ENV": "development", "DERMALENS_INSTANCE_PATH": str(instance),
           "GUNICORN_BIND": f"127.0.0.1:{port}"}
    # As a deployment does: the schema first (deploy/serve, or a pre-deploy step), then the workers.
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],  # nosec B603
                   cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c",  # nosec B603
                               "python:dermalens.gunicorn_config", "app:app"],
                              cwd=PROJECT_ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    import requests

    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < 120:
        try:
            health = requests.get(f"{url}/api/health", timeout=1).json()
            if health.get("model_loaded"):
                return server, url, time.perf_counter() - started
        except (requests.RequestException, ValueError):
            time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"the app did not start; see {log_path}")


def worker_peak_rss_mb(master_pid: int) -> list[float]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    peaks = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
    return peaks


def post_analysis(session, url, token, image: bytes):
    started = time.perf_counter()
    response = session.post(f"{url}/api/v1/analyses", headers={"Authorization": f"Bearer {token}"},
                            files={"image": ("lesion.jpg", image, "image/jpeg")},
                            data={"age": "55", "sex": "female", "site": "back"}, timeout=60)
    return time.perf_counter() - started, response


def measure_http(url: str, token: str, images: list[bytes], log_path: Path) -> dict:
    import requests

    session = requests.Session()
    for image in images[:3]:  # warm-up
        post_analysis(session, url, token, image)
    log_offset = log_path.stat().st_size
    latencies, ids, errors = [], [], 0
    for image in images:
        elapsed, response = post_analysis(session, url, token, image)
        if response.status_code == 201:
            latencies.append(elapsed * 1000)
            ids.append(response.json()["id"])
        else:
            errors += 1
    with open(log_path) as handle:
        handle.seek(log_offset)
        timings = [json.loads(m.group(1)) for m in re.finditer(r"analysis-timing (\{.*\})", handle.read())]
    stage_means = {name: statistics.mean(t.get(name, 0.0) for t in timings) for name in
                   sorted({name for t in timings for name in t})}
    total = sum(stage_means.values())

    pdf_times = []
    for public_id in ids[:30]:
        started = time.perf_counter()
        response = session.get(f"{url}/api/v1/analyses/{public_id}/report.pdf",
                               headers={"Authorization": f"Bearer {token}"}, timeout=60)
        pdf_times.append((time.perf_counter() - started) * 1000)
        errors += response.status_code != 200

    browser = requests.Session()
    login_page = browser.get(f"{url}/login").text
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page).group(1)
    browser.post(f"{url}/login", data={"username": "history", "password": PASSWORD, "csrf_token": csrf})
    history_times = []
    for page in range(1, 31):
        started = time.perf_counter()
        response = browser.get(f"{url}/history?page={page}", timeout=60)
        history_times.append((time.perf_counter() - started) * 1000)
        errors += response.status_code != 200 or "analyses" not in response.text
    return {
        "analysis_ms": {"n": len(latencies), "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "stages_ms": {name: round(value, 2) for name, value in stage_means.items()},
        "stage_share": {name: round(value / total, 3) for name, value in stage_means.items()} if total else {},
        "pdf_ms": {"n": len(pdf_times), "p50": percentile(pdf_times, 50)},
        "history_1000_ms": {"n": len(history_times), "p50": percentile(history_times, 50)},
        "errors": errors,
    }


def concurrent_uploads(url: str, tokens: list[str], images: list[bytes], per_user: int,
                       parallel: int) -> dict:
    """Every user (one token each) uploads `per_user` images, `parallel` requests at a time.

    Returns the created ids per token, the statuses, and the wall time.
    """
    import requests

    jobs = [(token, images[(index * 7 + n) % len(images)]) for index, token in enumerate(tokens)
            for n in range(per_user)]

    def send(job):
        token, image = job
        with requests.Session() as session:
            elapsed, response = post_analysis(session, url, token, image)
        return token, response.status_code, response.json().get("id") if response.status_code == 201 else None

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        outcomes = list(pool.map(send, jobs))
    created: dict[str, list[str]] = {token: [] for token in tokens}
    for token, status, public_id in outcomes:
        if public_id:
            created[token].append(public_id)
    return {"created": created, "statuses": [status for _, status, _ in outcomes],
            "seconds": time.perf_counter() - started}


def measure_throughput(url: str, token: str, images: list[bytes], levels=(1, 2, 4, 8)) -> dict:
    import requests

    results = {}
    for concurrency in levels:
        requests_count = max(16, concurrency * 6)
        sessions = [requests.Session() for _ in range(concurrency)]

        def send(index):
            return post_analysis(sessions[index % concurrency], url, token, images[index % len(images)])

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            outcomes = list(pool.map(send, range(requests_count)))
        wall = time.perf_counter() - started
        latencies = [elapsed * 1000 for elapsed, _ in outcomes]
        results[str(concurrency)] = {
            "requests": requests_count, "seconds": round(wall, 2),
            "analyses_per_second": round(requests_count / wall, 2),
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "errors": sum(response.status_code != 201 for _, response in outcomes)}
    return results


def measure_in_process(card: str, images: list[bytes], repeats: int = 20) -> dict:
    """Our analysis core vs the naive way, without HTTP or the database.

    Each runs in its own process: the naive Grad-CAM back-propagates through the whole network,
    which on some shapes crashes TensorFlow's oneDNN kernels (seen here with small test models);
    a crash is then reported instead of ending the benchmark.
    """
    figures = {}
    for way in ("ours", "naive", "inference"):
        child = subprocess.run([sys.executable, "-m", "tools.benchmark", "--core-only", way,  # nosec B603
                                "--model-card", card, "--images", str(repeats + 1)],
                               capture_output=True, text=True, cwd=PROJECT_ROOT)
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        figures[way] = json.loads(lines[-1]) if child.returncode == 0 and lines else {
            "error": f"exited with code {child.returncode}", "p50_ms": float("nan"), "p95_ms": float("nan")}
    figures["speedup_p50"] = figures["naive"]["p50_ms"] / figures["ours"]["p50_ms"]
    return figures


def time_core(way: str, card: str, images: list[bytes]) -> dict:
    """p50/p95 of one way of analysing (first image is a warm-up), in this process."""
    import keras
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore

    from dermalens import explanation, preprocessing, storage
    from dermalens.assessment import assess_image, decode_for_analysis
    from dermalens.inference import KerasClassifier, read_model_card

    classifier = KerasClassifier(card) if way in ("ours", "inference") else None
    naive_models = [keras.models.load_model(member.weights_path, compile=False)
                    for member in read_model_card(card)[1]]
    size = json.loads(Path(card).read_text())["input_size"]

    def ours(data):
        rgb = decode_for_analysis(data)
        assessment = assess_image(classifier, rgb, 55, "female", "back")
        overlay = explanation.overlay_heatmap(rgb, assessment.prediction.heatmap,
                                              assessment.prepared.square_on(rgb.shape))
        storage.encode_jpeg(rgb), storage.encode_jpeg(overlay)

    def naive(data):
        # The typical app: full decode, model.predict per request (each member of an ensemble),
        # a new Gradcam per call.
        from PIL import Image
        import io

        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        prepared = preprocessing.prepare(rgb)
        image = preprocessing.network_input(prepared, size).tensor[None]
        metadata = preprocessing.encode_metadata(55, "female", "back")[None]
        logits = np.mean([model.predict({"image": image, "metadata": metadata}, verbose=0)
                          for model in naive_models], axis=0)
        gradcam = Gradcam(naive_models[0])
        cam = gradcam(CategoricalScore([int(np.argmax(logits))]), [image, metadata],
                      penultimate_layer="features", expand_cam=False,
                      seek_penultimate_conv_layer=False)
        heat = cv2.resize(np.asarray(cam[0] if isinstance(cam, list) else cam)[0], (size, size))
        overlay = explanation.overlay_heatmap(rgb, heat, prepared.square_on(rgb.shape))
        cv2.imencode(".png", overlay)

    if way == "inference":
        # Single-image inference as the classifier issue defines it: preprocessing + network
        # (with TTA), no heatmap; images decoded beforehand.
        decoded = {id(data): decode_for_analysis(data) for data in images}

        def inference(data):
            prepared = preprocessing.prepare(decoded[id(data)])
            classifier.analyse(prepared, 55, "female", "back", explain=False)

    function = {"ours": ours, "naive": naive, "inference": locals().get("inference")}[way]
    function(images[0])
    times = []
    for data in images[1:]:
        started = time.perf_counter()
        function(data)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "n": len(times)}


def print_table(result: dict) -> None:
    http, core = result["http"], result["in_process"]
    rows = [
        ("cold start (s)", f"{result['cold_start_s']:.1f}", "<= 15"),
        ("analysis p50 (ms)", f"{http['analysis_ms']['p50']:.0f}", "<= 150"),
        ("analysis p95 (ms)", f"{http['analysis_ms']['p95']:.0f}", "<= 300"),
        ("PDF p50 (ms)", f"{http['pdf_ms']['p50']:.0f}", "<= 250"),
        ("History, 1,000 analyses, p50 (ms)", f"{http['history_1000_ms']['p50']:.0f}", "<= 100"),
        ("throughput at 4 (analyses/s)", f"{result['throughput']['4']['analyses_per_second']:.1f}", ">= 10"),
        ("peak RSS per worker (MB)", ", ".join(f"{v:.0f}" for v in result["worker_peak_rss_mb"]), "<= 1024"),
        ("core p50: ours / naive (ms)", f"{core['ours']['p50_ms']:.0f} / {core['naive']['p50_ms']:.0f}",
         core["naive"].get("error", "")),
        ("inference only p50 (ms, no heatmap)", f"{core['inference']['p50_ms']:.1f}", "<= 60"),
        ("speed-up vs naive (p50)", f"{core['speedup_p50']:.1f}x", ">= 3x"),
        ("HTTP analysis p50 vs naive core", f"{core['naive']['p50_ms'] / http['analysis_ms']['p50']:.1f}x", ""),
        ("errors", str(http["errors"] + sum(t["errors"] for t in result["throughput"].values())), "0"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':{width}}  {'value':>18}  target")
    for name, value, target in rows:
        print(f"{name:{width}}  {value:>18}  {target}")
    print("\nstage share of an analysis (mean ms):")
    for name, value in http["stages_ms"].items():
        print(f"  {name:10s} {value:7.1f} ms  {http['stage_share'].get(name, 0):.0%}")
    multi = result["multi_user"]
    print(f"\nmulti-user run: {multi['users']} users, {multi['requests']} uploads, {multi['workers']} workers: "
          f"{multi['analyses_per_second']:.1f}/s, errors {multi['errors']}, "
          f"'database is locked' {multi['database_locked']}")
    print("\nthroughput:")
    for level, figures in result["throughput"].items():
        print(f"  concurrency {level}: {figures['analyses_per_second']:.1f}/s over {figures['requests']} "
              f"requests, p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms, "
              f"errors {figures['errors']}")


def compare_databases(card: str, images: list[bytes], postgresql_server: str) -> dict:
    """The multi-user scenario (8 clinicians, 10 uploads each, 8 at a time) on SQLite with one
    worker, then on PostgreSQL with two: analyses a second and errors of each."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(postgresql_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS dermalens_bench WITH (FORCE)"))
        connection.execute(text("CREATE DATABASE dermalens_bench"))
    admin.dispose()
    bench_database = make_url(postgresql_server).set(database="dermalens_bench").render_as_string(hide_password=False)
    results = {}
    for label, workers, database in (("sqlite_1_worker", "1", None), ("postgresql_2_workers", "2", bench_database)):
        with tempfile.TemporaryDirectory() as folder:
            instance = Path(folder)
            settings = {"DATABASE_URL": database} if database else {}
            previous = os.environ.get("DATABASE_URL")
            os.environ.update(settings)
            try:
                clinicians = seed_database(instance, card, history_rows=0, extra_users=8)[1:]
                server, url, _ = start_server(instance, free_port(), instance / "gunicorn.log",
                                              WEB_CONCURRENCY=workers, **settings)
                try:
                    run = concurrent_uploads(url, clinicians, images, per_user=10, parallel=8)
                finally:
                    server.terminate()
                    server.wait(timeout=30)
            finally:
                os.environ.pop("DATABASE_URL", None)
                if previous is not None:
                    os.environ["DATABASE_URL"] = previous
        results[label] = {"workers": int(workers), "requests": len(run["statuses"]),
                          "seconds": round(run["seconds"], 2),
                          "analyses_per_second": round(len(run["statuses"]) / run["seconds"], 2),
                          "errors": sum(status != 201 for status in run["statuses"])}
    return results


def print_databases(databases: dict) -> None:
    print("\ndatabases, 8 clinicians uploading 80 images 8 at a time:")
    for label, figures in databases.items():
        print(f"  {label:22s} {figures['analyses_per_second']:.2f} analyses/s over {figures['requests']} "
              f"uploads ({figures['seconds']:.1f} s), errors {figures['errors']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench-results")
    parser.add_argument("--model-card", default=os.environ.get("DERMALENS_MODEL_CARD", str(DEFAULT_MODEL_CARD)))
    parser.add_argument("--core-only", choices=("ours", "naive", "inference"), help=argparse.SUPPRESS)
    parser.add_argument("--postgresql", help="a PostgreSQL server URL: also compare the databases")
    parser.add_argument("--databases-only", action="store_true", help="only the database comparison")
    args = parser.parse_args(argv)
    if args.databases_only and not args.postgresql:
        parser.error("--databases-only needs --postgresql")
    if args.core_only:
        print(json.dumps(time_core(args.core_only, args.model_card, real_size_images(args.images))))
        return 0
    os.environ["DERMALENS_MODEL_CARD"] = args.model_card
    os.environ.setdefault("DERMALENS_ENV", "development")
    images = real_size_images(args.images)
    databases = compare_databases(args.model_card, images, args.postgresql) if args.postgresql else None
    if args.databases_only:
        print_databases(databases)
        _write(args.out, {"when": datetime.now().isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
                          "databases": databases})
        return 0
    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        token, *clinicians = seed_database(instance, args.model_card, history_rows=1000, extra_users=8)
        log_path = instance / "gunicorn.log"
        server, url, cold_start = start_server(instance, free_port(), log_path)
        try:
            http = measure_http(url, token, images, log_path)
            throughput = measure_throughput(url, token, images)
            peaks = worker_peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        # The concurrency test's scenario, larger: 8 clinicians, 2 workers, 8 requests at a time.
        server, url, _ = start_server(instance, free_port(), instance / "gunicorn-2.log",
                                      WEB_CONCURRENCY="2")
        try:
            run = concurrent_uploads(url, clinicians, images, per_user=10, parallel=8)
        finally:
            server.terminate()
            server.wait(timeout=30)
        log_text = (instance / "gunicorn-2.log").read_text()
    multi_user = {"users": len(clinicians), "requests": len(run["statuses"]), "workers": 2,
                  "seconds": round(run["seconds"], 2),
                  "analyses_per_second": round(len(run["statuses"]) / run["seconds"], 2),
                  "errors": sum(status != 201 for status in run["statuses"]),
                  "database_locked": log_text.count("database is locked")}
    result = {"when": datetime.now().isoformat(timespec="seconds"), "model_card": args.model_card,
              "cpu_count": os.cpu_count(), "cold_start_s": cold_start, "http": http,
              "throughput": throughput, "worker_peak_rss_mb": peaks, "multi_user": multi_user,
              "in_process": measure_in_process(args.model_card, images), "databases": databases}
    print_table(result)
    if databases:
        print_databases(databases)
    _write(args.out, result)
    return 0


def _write(folder: Path, result: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    sys.exit(main())
