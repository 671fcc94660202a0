# keysat-webhooks — build, test, install.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
MANDIR = $(DESTDIR)$(PREFIX)/share/man
SWIFT ?= swift
# Installed binaries carry the Swift runtime inside: target hosts have no toolchain.
RELEASE_FLAGS = -c release --static-swift-stdlib
PROGRAMS = keysat-enqueue keysat-deliver keysat-webhooks

.PHONY: all build release test lint-man quickstart bench install uninstall clean

all: build

build:
	$(SWIFT) build

release:
	$(SWIFT) build $(RELEASE_FLAGS)

# The test command CI runs: unit tests and end-to-end tests against the built binaries.
test: lint-man
	$(SWIFT) build --build-tests
	KEYSAT_BIN_DIR="$$($(SWIFT) build --show-bin-path)" $(SWIFT) test --skip-build --disable-swift-testing

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
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7
	for p in $(PROGRAMS); do install -m 0755 "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/$$p" $(BINDIR)/$$p; done
	for page in man/*.1; do [ -e "$$page" ] && install -m 0644 "$$page" $(MANDIR)/man1/ || true; done
	for page in man/*.7; do [ -e "$$page" ] && install -m 0644 "$$page" $(MANDIR)/man7/ || true; done

uninstall:
	for p in $(PROGRAMS); do rm -f $(BINDIR)/$$p; done
	rm -f $(MANDIR)/man1/keysat-enqueue.1 $(MANDIR)/man1/keysat-deliver.1 $(MANDIR)/man1/keysat-webhooks.1 $(MANDIR)/man7/keysat-webhooks.7

clean:
	rm -rf .build quickstart
