# DermaLens: `make run` serves the app with the shipped model; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# make run is a local install on loopback over plain HTTP; deployments set production.
DERMALENS_ENV ?= development
DATA ?= ../shared/data/ham10000

export DERMALENS_ENV
# The pytest configuration lives with the tests.
PYTEST_ARGS := -c tests/pytest.ini --rootdir .

.PHONY: run db test test-fast check e2e bench folds teacher-views train evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: tests/requirements.txt tools/requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r tests/requirements.txt
	touch $@

db: $(VENV)/.installed
	$(BIN)/flask --app app db upgrade

run: db
	@echo "DermaLens on http://127.0.0.1:$(PORT) (Ctrl+C to stop)"
	GUNICORN_BIND=127.0.0.1:$(PORT) $(BIN)/gunicorn -c python:dermalens.gunicorn_config app:app

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS) -q

# Static and dependency checks: bandit on the code, pip-audit on the pinned requirements.
check: $(VENV)/.installed-dev
	$(BIN)/bandit -q -r dermalens tools
	$(BIN)/pip-audit -r requirements.txt -r tools/requirements.txt

# Browser journey in headless Chromium (Debian's; installed when missing and run as root).
e2e: $(VENV)/.installed-dev
	@command -v chromium >/dev/null && command -v pdftoppm >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium poppler-utils; \
		else echo "Install chromium and poppler-utils (pdftoppm) first."; exit 1; fi; }
	cd tests/e2e && npm install --no-audit --no-fund --silent
	$(BIN)/python -m pytest $(PYTEST_ARGS) -q -p no:cacheprovider tests/e2e

# Speed and memory figures of the deployed app (prints a table, writes bench-results/*.json).
bench: $(VENV)/.installed-dev
	$(BIN)/python -m tools.benchmark

# Everything except the tests that load TensorFlow.
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS) -q -m "not tensorflow"

# The lesion-grouped cross-validation folds every candidate classifier is measured on.
folds: $(VENV)/.installed
	$(BIN)/python -m dermalens.training.folds --data $(DATA) --out models/dermalens-folds.csv

# A distillation teacher's outputs on fixed device-style views of every training image (sklesion's
# ImageNet Xception; installed without its outdated pins), committed in models/teacher/ (1 MB for
# 4 views, 1.6 MB for 8) so training can start without it. The 8-view cache grows from the 4-view
# one, computing views 4-7 only. About 100 minutes for 4 views of the 10,015 images on an early
# 2-core machine, 55 minutes for the 4 more on a later one; resumable (a complete file is left as it is).
teacher-views: $(VENV)/.installed
	$(BIN)/pip install --quiet --no-deps sklesion==0.2.2
	$(BIN)/python -m dermalens.training.teacher --data $(DATA) \
		--out models/teacher/sklesion-views-4.npz --views 4 --resume
	$(BIN)/python -m dermalens.training.teacher --data $(DATA) \
		--out models/teacher/sklesion-views-8.npz --views 8 --extend models/teacher/sklesion-views-4.npz --resume

# The shipped model (see models/README.md): an ensemble of two networks of fold 0, one per
# recipe (sklesion teacher weight 0.8 and 1.0, "function matching" on the committed teacher
# views), whose risk thresholds are fitted on out-of-fold predictions. So each recipe is trained
# on all five folds (10 networks, each resumable and calibrated when done), each recipe's five
# networks are pooled out of fold, the two pools averaged, and fold 0's two networks assembled
# with those thresholds, missing no more melanomas than 1.2.3 (models/retired/1.2.3/). Each
# network's epochs are held to a time budget (--time-budget, minutes) within which its recorded
# run trained all 32 epochs on an earlier development machine; on a 2-core machine without
# bfloat16 arithmetic (AVX2 only) an epoch took 5-7 minutes, about 3 hours a network and 30 hours
# in all, and the budget would cut the epochs short: run it on a bigger machine or a GPU (the same
# commands run there). It trains under this code's preprocessing (version 4, a round field of view
# filled in), so its networks need no --carry-over-preprocessing; 1.3.1's were trained under
# version 3 and are served under 4 (docs/model-history.md).
FOLD_TRAIN = $(BIN)/python -m dermalens.train --data $(DATA) --folds models/dermalens-folds.csv \
	--teacher-views models/teacher/sklesion-views-4.npz --teacher-prior natural --input-size 160 \
	--epochs 32 --learning-rate 2e-3 --balanced-sampling 0.5 --ema-momentum 0.997 --mixed-precision \
	--ship last --version 1.3.1 --resume
RECIPES := fm-scratch:0.8:95 fm-scratch-tw1:1.0:80

train: $(VENV)/.installed
	set -e; for recipe in $(RECIPES); do \
		name=$${recipe%%:*}; rest=$${recipe#*:}; weight=$${rest%%:*}; budget=$${rest#*:}; \
		for fold in 0 1 2 3 4; do \
			$(FOLD_TRAIN) --fold $$fold --teacher-weight $$weight --time-budget $$budget \
				--name dermalens-$$name-fold$$fold --out .training/candidates/$$name-fold$$fold \
				--work-dir .training/$$name-fold$$fold; \
		done; \
		PYTHONPATH=. $(BIN)/python -m dermalens.training.out_of_fold --data $(DATA) \
			--folds models/dermalens-folds.csv --out .training/eval/$$name-oof5 \
			$$(for fold in 0 1 2 3 4; do echo --model-card .training/candidates/$$name-fold$$fold/dermalens-$$name-fold$$fold.json; done); \
	done
	PYTHONPATH=. $(BIN)/python -m dermalens.training.average --predictions .training/eval/fm-scratch-oof5 \
		--predictions .training/eval/fm-scratch-tw1-oof5 --fit-risk --out .training/eval/fm-pair-oof5
	PYTHONPATH=. $(BIN)/python -m dermalens.training.ensemble --data $(DATA) \
		--member .training/candidates/fm-scratch-fold0/dermalens-fm-scratch-fold0.json \
		--member .training/candidates/fm-scratch-tw1-fold0/dermalens-fm-scratch-tw1-fold0.json \
		--name dermalens-resnet18s-v1 --version 1.3.1 --out models/ \
		--out-of-fold .training/eval/fm-pair-oof5 --misses-as models/retired/1.2.3/dermalens-resnet18s-v1.json

evaluate: $(VENV)/.installed
	$(BIN)/python -m dermalens.evaluate --images $(IMAGES) --labels $(LABELS) --out evaluation-output

clean:
	rm -rf $(VENV) .pytest_cache
