# The two commands of the README: `make run` and `make test` (and `make api`, the platform API).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run api test install browser

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# Debian's chromium for the browser tests (Playwright drives the system binary).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(VENV)/bin/streamlit run dashboard/app.py

# The platform API (docs/api.md); on the embedded database stop `make run` first (one writer per file).
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
api: install
	$(PY) -m api --host $(API_HOST) --port $(API_PORT)

test: install browser
	$(PY) -m pytest -q
