# keysat-webhooks — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man
DATADIR = $(DESTDIR)$(PREFIX)/share
DOCDIR = $(DESTDIR)$(PREFIX)/share/doc/keysat-webhooks
UNITDIR = $(DESTDIR)$(PREFIX)/lib/systemd/system
SWIFT ?= swift
# How installed binaries are built, said once in scripts/release-flags (the scripts use it too).
RELEASE_FLAGS = $(shell scripts/release-flags)
# One program, three names (issue 24): keysat-webhooks, and the others as links to it.
PROGRAMS = keysat-enqueue keysat-deliver keysat-webhooks
LINKED = keysat-enqueue keysat-deliver

# What each step needs is said once, in scripts/setup.sh: it installs what is missing (as root),
# or names the `sudo apt-get install` command and exits 69.
SETUP = ./scripts/setup.sh
# The tests' Python packages live in the project's virtual environment, first on PATH.
VENV_PATH = PATH="$(CURDIR)/.venv/bin:$$PATH"

.PHONY: all build release test lint-man quickstart bench install uninstall check-install check-units \
	check-fresh dist check-dist fuzz clean setup-build setup-test setup-dist install-files check-alerts

all: build

setup-build:
	@$(SETUP) build

setup-test:
	@$(SETUP) test

# After each build, the build folder gets the program's other names (scripts/link-programs).
build: setup-build
	$(SWIFT) build
	scripts/link-programs "$$($(SWIFT) build --show-bin-path)"

release: setup-build
	$(SWIFT) build $(RELEASE_FLAGS)
	scripts/link-programs "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)"

# The test command CI runs: unit tests and end-to-end tests against the built binaries, all on
# SQLite; then the suites that run on both backends (the end-to-end tests and the store
# protocol's) again on PostgreSQL, on a throw-away cluster the test process starts and stops
# (scripts/pg-test-cluster.sh). One suite, one parameter: KEYSAT_TEST_BACKEND.
BOTH_BACKENDS = EndToEndTests|KeysatStoreTests.StoreProtocolTests
test: setup-test lint-man
	$(SWIFT) build --build-tests
	scripts/link-programs "$$($(SWIFT) build --show-bin-path)"
	$(VENV_PATH) KEYSAT_BIN_DIR="$$($(SWIFT) build --show-bin-path)" $(SWIFT) test --skip-build --disable-swift-testing
	$(VENV_PATH) KEYSAT_TEST_BACKEND=postgresql KEYSAT_BIN_DIR="$$($(SWIFT) build --show-bin-path)" \
		$(SWIFT) test --skip-build --disable-swift-testing --filter '$(BOTH_BACKENDS)'

lint-man:
	@if command -v mandoc >/dev/null; then \
		for page in man/*.[0-9]; do [ -e "$$page" ] || continue; \
			mandoc -Tlint -W warning "$$page" || exit 1; done; \
	else echo "lint-man: mandoc not installed, skipped"; fi

quickstart: release
	./scripts/quickstart.sh

bench: release
	./bench/run.sh $(if $(SCALE),--scale)

# For those who build on the host; a host without a toolchain installs `make dist`'s package.
install: release
	$(MAKE) --no-print-directory install-files BIN_SOURCE="$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)"

# Copies built binaries (BIN_SOURCE) and everything else into place; runs no compiler.
install-files:
	@[ -n "$(BIN_SOURCE)" ] || { echo "install-files: BIN_SOURCE= the folder of the built binaries" >&2; exit 64; }
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7 $(UNITDIR) $(DOCDIR) \
		$(DATADIR)/bash-completion/completions $(DATADIR)/zsh/site-functions $(DATADIR)/fish/vendor_completions.d
	# One file; its other names are relative symbolic links beside it (ls -l shows what they are).
	install -m 0755 -s "$(BIN_SOURCE)/keysat-webhooks" $(BINDIR)/keysat-webhooks
	for p in $(LINKED); do ln -sfn keysat-webhooks $(BINDIR)/$$p; done
	"$(BIN_SOURCE)/keysat-webhooks" --generate-completion-script bash > $(DATADIR)/bash-completion/completions/keysat-webhooks
	"$(BIN_SOURCE)/keysat-webhooks" --generate-completion-script zsh > $(DATADIR)/zsh/site-functions/_keysat-webhooks
	"$(BIN_SOURCE)/keysat-webhooks" --generate-completion-script fish > $(DATADIR)/fish/vendor_completions.d/keysat-webhooks.fish
	chmod 0644 $(DATADIR)/bash-completion/completions/keysat-webhooks $(DATADIR)/zsh/site-functions/_keysat-webhooks \
		$(DATADIR)/fish/vendor_completions.d/keysat-webhooks.fish
	# The hand-parsed programs print completions made from the table they parse with (run by the
	# links just installed: the names the user runs).
	for p in $(LINKED); do \
		"$(BINDIR)/$$p" --generate-completion-script bash > $(DATADIR)/bash-completion/completions/$$p; \
		chmod 0644 $(DATADIR)/bash-completion/completions/$$p; done
	install -m 0644 man/*.1 $(MANDIR)/man1/
	install -m 0644 man/*.7 $(MANDIR)/man7/
	for unit in cron/*.service cron/*.timer cron/*.path; do [ -e "$$unit" ] || continue; \
		sed 's#/usr/local/bin/#$(PREFIX)/bin/#g' "$$unit" > $(UNITDIR)/$$(basename "$$unit"); \
		chmod 0644 $(UNITDIR)/$$(basename "$$unit"); done
	install -d $(DOCDIR)/examples
	install -m 0644 README.md LICENSE $(DOCDIR)/
	sed 's#/usr/local/bin#$(PREFIX)/bin#g' cron/keysat-deliver.cron > $(DOCDIR)/examples/keysat-deliver.cron
	install -m 0644 etc/keysat-webhooks.default $(DOCDIR)/examples/keysat-webhooks.default
	install -m 0644 etc/keysat-webhooks.rules.yml etc/keysat-webhooks.grafana.json $(DOCDIR)/examples/
	chmod 0644 $(DOCDIR)/examples/keysat-deliver.cron

# The package for hosts without a toolchain: dist/keysat-webhooks_VERSION_ARCH.deb and .tar.gz.
dist: setup-dist
	./scripts/dist.sh

setup-dist:
	@$(SETUP) dist

# Builds the package, checks it with lintian, installs it on this machine, runs what it ships
# as its units and cron file would (as their users, with the toolchain hidden), removes it; then
# the same in a Debian 13 root (debootstrap, cached outside the clone), installed there by apt.
check-dist: dist
	./scripts/check-dist.sh

# The README's two commands on a fresh machine: a clean clone, the -dev packages, the Python
# packages and the virtual environment hidden (mount namespace), `make quickstart`, `make test`.
check-fresh:
	./scripts/check-fresh.sh

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

# libFuzzer targets: the JSON and URL validators, durations, content filters, received-webhook verification
# (CI runs them briefly; longer by hand).
FUZZ_SECONDS ?= 60
fuzz:
	./Fuzz/run.sh $(FUZZ_SECONDS)

check-units: build
	./scripts/check-units.sh

# The shipped Prometheus alert rules and Grafana dashboard, tested with promtool against the
# metrics files of real runs.
check-alerts: build
	@$(SETUP) alerts
	./scripts/check-alerts.sh

clean:
	rm -rf .build quickstart dist
