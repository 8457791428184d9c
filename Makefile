# natreveal: build and install. make install DESTDIR=/tmp/pkg PREFIX=/usr
PREFIX    ?= /usr
BINDIR    ?= $(PREFIX)/bin
UNITDIR   ?= /lib/systemd/system
SYSCONFDIR ?= /etc
GO        ?= go
# BIN: where the build puts the binary
BIN       ?= natreveal
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD ?= -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: all build install uninstall test

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/natreveal

# The unit names /usr/bin/natreveal; with another BINDIR the installed unit
# is rewritten to match. An existing configuration is never overwritten.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/natreveal
	install -D -m 0644 systemd/natreveal.service $(DESTDIR)$(UNITDIR)/natreveal.service
	sed -i "s|/usr/bin/natreveal|$(BINDIR)/natreveal|g" $(DESTDIR)$(UNITDIR)/natreveal.service
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/natreveal
	install -m 0644 systemd/natreveal.yaml $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml.example
	[ -e $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml ] || install -m 0644 systemd/natreveal.yaml $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/natreveal $(DESTDIR)$(UNITDIR)/natreveal.service $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml.example

test:
	$(GO) test -count=1 -timeout 30m ./...
