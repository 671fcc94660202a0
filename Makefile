# keysat-webhooks — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man
DATADIR = $(DESTDIR)$(PREFIX)/share
DOCDIR = $(DESTDIR)$(PREFIX)/share/doc/keysat-webhooks
UNITDIR = $(DESTDIR)$(PREFIX)/lib/systemd/system
SWIFT ?= swift
# Installed binaries carry the Swift runtime inside: target hosts have no toolchain.
RELEASE_FLAGS = -c release --static-swift-stdlib
PROGRAMS = keysat-enqueue keysat-deliver keysat-webhooks

# What each step needs is said once, in scripts/setup.sh: it installs what is missing (as root),
# or names the `sudo apt-get install` command and exits 69.
SETUP = ./scripts/setup.sh
# The tests' Python packages live in the project's virtual environment, first on PATH.
VENV_PATH = PATH="$(CURDIR)/.venv/bin:$$PATH"

.PHONY: all build release test lint-man quickstart bench install uninstall check-install check-units \
	check-fresh dist check-dist fuzz clean setup-build setup-test

all: build

setup-build:
	@$(SETUP) build

setup-test:
	@$(SETUP) test

build: setup-build
	$(SWIFT) build

release: setup-build
	$(SWIFT) build $(RELEASE_FLAGS)

# The test command CI runs: unit tests and end-to-end tests against the built binaries.
test: setup-test lint-man
	$(SWIFT) build --build-tests
	$(VENV_PATH) KEYSAT_BIN_DIR="$$($(SWIFT) build --show-bin-path)" $(SWIFT) test --skip-build --disable-swift-testing

lint-man:
	@if command -v mandoc >/dev/null; then \
		for page in man/*.[0-9]; do [ -e "$$page" ] || continue; \
			mandoc -Tlint -W warning "$$page" || exit 1; done; \
	else echo "lint-man: mandoc not installed, skipped"; fi

quickstart: release
	./scripts/quickstart.sh

bench: release
	./bench/run.sh

install: release
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7 $(UNITDIR) $(DOCDIR) \
		$(DATADIR)/bash-completion/completions $(DATADIR)/zsh/site-functions $(DATADIR)/fish/vendor_completions.d
	bin="$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)"; \
	for p in $(PROGRAMS); do install -m 0755 -s "$$bin/$$p" $(BINDIR)/$$p; done; \
	"$$bin/keysat-webhooks" --generate-completion-script bash > $(DATADIR)/bash-completion/completions/keysat-webhooks; \
	"$$bin/keysat-webhooks" --generate-completion-script zsh > $(DATADIR)/zsh/site-functions/_keysat-webhooks; \
	"$$bin/keysat-webhooks" --generate-completion-script fish > $(DATADIR)/fish/vendor_completions.d/keysat-webhooks.fish
	for p in keysat-enqueue keysat-deliver; do \
		install -m 0644 completions/$$p.bash $(DATADIR)/bash-completion/completions/$$p; done
	install -m 0644 man/*.1 $(MANDIR)/man1/
	install -m 0644 man/*.7 $(MANDIR)/man7/
	for unit in cron/*.service cron/*.timer cron/*.path; do [ -e "$$unit" ] || continue; \
		sed 's#/usr/local/bin/#$(PREFIX)/bin/#g' "$$unit" > $(UNITDIR)/$$(basename "$$unit"); done
	install -m 0644 cron/keysat-deliver.cron $(DOCDIR)/keysat-deliver.cron.example

uninstall:
	for p in $(PROGRAMS); do rm -f $(BINDIR)/$$p; done
	rm -f $(MANDIR)/man1/keysat-enqueue.1 $(MANDIR)/man1/keysat-deliver.1 $(MANDIR)/man1/keysat-webhooks.1 \
		$(MANDIR)/man7/keysat-webhooks.7
	rm -f $(UNITDIR)/keysat-deliver.service $(UNITDIR)/keysat-deliver.timer $(UNITDIR)/keysat-deliver.path
	for p in $(PROGRAMS); do rm -f $(DATADIR)/bash-completion/completions/$$p; done
	rm -f $(DATADIR)/zsh/site-functions/_keysat-webhooks $(DATADIR)/fish/vendor_completions.d/keysat-webhooks.fish
	rm -rf $(DOCDIR)

# Installs into a scratch folder and runs the installed binaries with the Swift toolchain
# out of reach, as on a target host.
check-install:
	./scripts/check-install.sh

# libFuzzer targets for the JSON and URL validators (CI runs them briefly; longer by hand).
FUZZ_SECONDS ?= 60
fuzz:
	./Fuzz/run.sh $(FUZZ_SECONDS)

check-units: build
	./scripts/check-units.sh

clean:
	rm -rf .build quickstart
