"""What hostile uploads cost a worker as deployed: decode time, peak memory, health latency.

    python -m tools.hostile_uploads [--out bench-results]

For each attack of the hardening issue (a progressive-JPEG scan bomb, a small all-zero 16-bit
PNG of 6300x6300 and the same in RGBA), a fresh gunicorn as deployed (one worker, four threads)
receives four copies at once through the API while a fifth client asks `/api/health` every
0.2 s. It prints, per attack: the answers, the wall time of the four uploads, the slowest
health answer meanwhile, and the worker's peak resident memory against its peak after one
ordinary upload. It also times, in this process, what decoding the scan bomb would cost if it
were not refused. Where nginx is installed it first sends eight slowloris sign-ins to gunicorn
alone and to `deploy/serve` (nginx in front) and times `/api/health` meanwhile. Measurements,
not pass/fail tests.
"""

import argparse
import io
import json
import os
import shutil
import socket
# Starts this project's own deploy/serve with fixed arguments (bandit B404/B603).
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from dermalens import preprocessing
from dermalens.config import DEFAULT_MODEL_CARD, PROJECT_ROOT
from tools import benchmark

CONCURRENT = 4


def scan_bomb() -> bytes:
    """6000x6000 progressive JPEG whose last scan is repeated 1,000 times (about 0.4 MB)."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((6000, 6000, 3), np.uint8)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    return data[:last_scan] + data[last_scan:-2] * 1000 + b"\xff\xd9"


def deep_png(mode: str) -> bytes:
    image = (Image.fromarray(np.zeros((6300, 6300), np.uint16)) if mode == "I;16"
             else Image.new(mode, (6300, 6300)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def attack(name: str, data: bytes, workdir: Path) -> dict:
    """Four concurrent uploads of `data` against a fresh server, health polled meanwhile."""
    import requests

    instance = workdir / name
    instance.mkdir()
    token = benchmark.seed_database(instance, str(DEFAULT_MODEL_CARD), history_rows=0)[0]
    server, url, _ = benchmark.start_server(instance, benchmark.free_port(), instance / "gunicorn.log")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        ordinary = benchmark.real_size_images(1)[0]
        requests.post(f"{url}/api/v1/analyses", headers=headers, timeout=60,
                      files={"image": ("lesion.jpg", ordinary, "image/jpeg")})
        baseline_mb = max(benchmark.worker_peak_rss_mb(server.pid))
        health_seconds, stop = [], threading.Event()

        def poll_health():
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    requests.get(f"{url}/api/health", timeout=60)
                except requests.RequestException:
                    pass
                health_seconds.append(time.perf_counter() - started)
                time.sleep(0.2)

        def upload(_):
            response = requests.post(f"{url}/api/v1/analyses", headers=headers, timeout=300,
                                     files={"image": (f"{name}.bin", data, "application/octet-stream")})
            return response.status_code

        poller = threading.Thread(target=poll_health)
        poller.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENT) as pool:
            statuses = list(pool.map(upload, range(CONCURRENT)))
        elapsed = time.perf_counter() - started
        stop.set()
        poller.join()
        peak_mb = max(benchmark.worker_peak_rss_mb(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"attack": name, "file_kb": round(len(data) / 1024), "statuses": statuses,
            "seconds_for_4": round(elapsed, 2), "slowest_health_s": round(max(health_seconds), 3),
            "health_checks": len(health_seconds), "worker_peak_mb": round(peak_mb),
            "worker_peak_after_one_ordinary_upload_mb": round(baseline_mb)}


def start_tricklers(port: int, count: int):
    """`count` connections each sending a sign-in whose body arrives at a byte every half second
    (slowloris); returns the function that stops them."""
    stop = threading.Event()

    def trickle():
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Type: application/x-www-form-urlencoded\r\n"
                               b"Content-Length: 400\r\n\r\n")
            while not stop.is_set():
                try:
                    connection.sendall(b"a")
                except OSError:
                    return
                stop.wait(0.5)

    threads = [threading.Thread(target=trickle) for _ in range(count)]
    for thread in threads:
        thread.start()

    def stop_all():
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    return stop_all


def slow_clients(url: str, port: int) -> dict:
    """Health answers (status or "timeout" after 10 s) while 8 clients trickle sign-ins."""
    import requests

    stop = start_tricklers(port, 8)
    answers = []
    try:
        time.sleep(2)
        for _ in range(3):
            started = time.perf_counter()
            try:
                status = requests.get(f"{url}/api/health", timeout=10).status_code
            except requests.RequestException:
                status = "timeout"
            answers.append({"status": status, "seconds": round(time.perf_counter() - started, 3)})
    finally:
        stop()
    return {"health_while_8_trickle": answers}


def slow_clients_both_ways(workdir: Path) -> dict:
    """The slowloris against gunicorn alone and against deploy/serve (nginx in front)."""
    import requests

    results = {}
    instance = workdir / "direct"
    instance.mkdir()
    benchmark.seed_database(instance, str(DEFAULT_MODEL_CARD), history_rows=0)
    port = benchmark.free_port()
    server, url, _ = benchmark.start_server(instance, port, instance / "gunicorn.log")
    try:
        results["gunicorn alone"] = slow_clients(url, port)
    finally:
        server.terminate()
        server.wait(timeout=30)
    instance = workdir / "behind-nginx"
    instance.mkdir()
    port = benchmark.free_port()
    env = {**os.environ, "PORT": str(port), "PYTHON": sys.executable, "DERMALENS_ENV": "development",
           "DERMALENS_INSTANCE_PATH": str(instance)}
    server = subprocess.Popen([str(PROJECT_ROOT / "deploy" / "serve")], env=env,  # nosec B603
                              stdout=open(instance / "serve.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        results["deploy/serve (nginx)"] = slow_clients(url, port)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def unrefused_decode_seconds(data: bytes) -> dict:
    """Time to refuse the bomb, and what Pillow alone takes to decode it (at the app's scale)."""
    started = time.perf_counter()
    try:
        preprocessing.decode_image(data, max_side=preprocessing.DISPLAY_MAX_SIDE)
    except preprocessing.InvalidImage:
        pass
    refused = time.perf_counter() - started
    started = time.perf_counter()
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (preprocessing.DISPLAY_MAX_SIDE,) * 2)
    image.load()
    return {"refused_in_s": round(refused, 4), "pillow_decode_s": round(time.perf_counter() - started, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    os.environ.setdefault("DERMALENS_ENV", "development")  # throw-away instances, as make bench
    bomb = scan_bomb()
    results = {"scan_bomb_in_process": unrefused_decode_seconds(bomb), "attacks": []}
    print("scan bomb in process:", results["scan_bomb_in_process"], flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        if shutil.which("nginx"):
            results["slow_clients"] = slow_clients_both_ways(Path(workdir))
            print("slow clients:", json.dumps(results["slow_clients"]), flush=True)
        for name, data in (("scan-bomb", bomb), ("png-16bit", deep_png("I;16")),
                           ("png-rgba", deep_png("RGBA"))):
            result = attack(name, data, Path(workdir))
            results["attacks"].append(result)
            print(json.dumps(result), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hostile-uploads.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
