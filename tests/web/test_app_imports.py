"""The product serves requests without the workbench: what creating the app imports, and what the
framework-free image pipeline does not."""

import json
import os
import subprocess
import sys

import pytest

from dermalens.config import DEFAULT_MODEL_CARD, PROJECT_ROOT

# Top-level packages of the training, evaluation, study, benchmark and teacher code, and the
# progress-bar library they use.
WORKBENCH = ("dermalens.training", "dermalens.train", "dermalens.evaluate", "dermalens.teacher",
             "tools", "tqdm")
WEB_STACK = ("flask", "flask_login", "flask_sqlalchemy", "flask_wtf", "sqlalchemy", "werkzeug")


def imported_modules(code: str, tmp_path) -> list[str]:
    """The modules a fresh Python has loaded after running `code` in the project root."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "DERMALENS_ENV": "development", "DERMALENS_INSTANCE_PATH": str(tmp_path),
           "DERMALENS_MODEL_CARD": str(DEFAULT_MODEL_CARD), "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env,  # nosec B603
                            capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def loaded(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [name for name in modules if any(name == p or name.startswith(p + ".") for p in packages)]


@pytest.mark.tensorflow
def test_creating_the_app_as_gunicorn_does_imports_no_workbench_module(tmp_path):
    modules = imported_modules("import dermalens.gunicorn_config\nimport app", tmp_path)
    assert "dermalens.inference" in modules and "tensorflow" in modules  # the real model loaded
    assert loaded(modules, WORKBENCH) == []


def test_the_image_pipeline_and_assessment_import_without_the_web_stack(tmp_path):
    modules = imported_modules("import dermalens.assessment, dermalens.predict, dermalens.training.data",
                               tmp_path)
    assert loaded(modules, WEB_STACK) == []
