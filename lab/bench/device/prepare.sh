#!/bin/sh
# Prepares the scaling bench for a bigger machine that has no Go, nft or
# iproute2 of its own (docs/performance.md, "Scaling"): static natreveal
# and natreveal-lab, and this machine's ip, nft, taskset and sysctl with their
# shared libraries and dynamic loader, under .device/ (git-ignored) at the
# repository root (or DIR). Carry .device/ there and run
# lab/bench/device/run.sh. Usage: lab/bench/device/prepare.sh [DIR]
set -eu
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
d=${1:-$root/.device}
rm -rf "$d"
mkdir -p "$d/bin" "$d/libexec" "$d/lib"
d=$(cd "$d" && pwd)
cd "$root"
CGO_ENABLED=0 go build -trimpath -o "$d/bin/natreveal" ./cmd/natreveal
CGO_ENABLED=0 go build -trimpath -o "$d/bin/natreveal-lab" ./cmd/natreveal-lab
for tool in ip nft taskset sysctl; do
	p=$(command -v "$tool") || { echo "prepare: no $tool here" >&2; exit 1; }
	cp "$p" "$d/libexec/$tool"
	ldd "$p" | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
		cp -L "$lib" "$d/lib/"
	done
	# A wrapper on PATH runs the tool with the carried loader and libraries
	# (ip netns exec finds nft through PATH too).
	cat >"$d/bin/$tool" <<WRAP
#!/bin/sh
d=\$(cd "\${0%/*}/.." && pwd)
exec "\$d/lib/$(basename "$(ldd "$p" | awk '$1 ~ /ld-linux/ {print $1}')")" --library-path "\$d/lib" "\$d/libexec/$tool" "\$@"
WRAP
	chmod +x "$d/bin/$tool"
done
du -sh "$d"
