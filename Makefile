# natreveal: build and install.
#   make && make install DESTDIR=/tmp/pkg PREFIX=/usr   the router daemon and its unit
#   make server && make install-server                  natreveal-server (serve, observe, decode, portset lookup)
#   make lab                                            natreveal-lab (lab, bench, demo)
PREFIX    ?= /usr
BINDIR    ?= $(PREFIX)/bin
UNITDIR   ?= /lib/systemd/system
SYSCONFDIR ?= /etc
GO        ?= go
# BIN, SERVER_BIN, LAB_BIN: where the build puts each binary
BIN       ?= natreveal
SERVER_BIN ?= natreveal-server
LAB_BIN   ?= natreveal-lab
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD ?= -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: all build server lab install install-server install-lab uninstall test

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/natreveal

server:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(SERVER_BIN) ./cmd/natreveal-server

lab:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(LAB_BIN) ./cmd/natreveal-lab

# The unit names /usr/bin/natreveal; with another BINDIR the installed unit
# is rewritten to match. An existing configuration is never overwritten.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/natreveal
	install -D -m 0644 systemd/natreveal.service $(DESTDIR)$(UNITDIR)/natreveal.service
	sed -i "s|/usr/bin/natreveal|$(BINDIR)/natreveal|g" $(DESTDIR)$(UNITDIR)/natreveal.service
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/natreveal
	install -m 0644 systemd/natreveal.yaml $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml.example
	[ -e $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml ] || install -m 0644 systemd/natreveal.yaml $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml

install-server: server
	install -D -m 0755 $(SERVER_BIN) $(DESTDIR)$(BINDIR)/natreveal-server

install-lab: lab
	install -D -m 0755 $(LAB_BIN) $(DESTDIR)$(BINDIR)/natreveal-lab

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/natreveal $(DESTDIR)$(UNITDIR)/natreveal.service $(DESTDIR)$(SYSCONFDIR)/natreveal/natreveal.yaml.example
	rm -f $(DESTDIR)$(BINDIR)/natreveal-server $(DESTDIR)$(BINDIR)/natreveal-lab

test:
	$(GO) test -count=1 -timeout 30m ./...

# Every fuzz target for FUZZTIME each (CI runs 5000 inputs each in go test).
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz:
	FUZZTIME=$(FUZZTIME) $(GO) test -count=1 -timeout 0 -run '^TestFuzzTargetsRun$$' -v ./test/
