#!/bin/sh
# Runs the scaling bench with what prepare.sh put under .device/, as root,
# and writes the table, its JSON and the machine's description under $OUT
# (or ./scaling-out). Usage: lab/bench/device/run.sh [extra bench flags]
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
d="$root/.device"
out=${OUT:-$root/scaling-out}
mkdir -p "$out"
export PATH="$d/bin:$PATH"
{
	uname -a
	nproc
	grep -m1 'model name' /proc/cpuinfo || true
	ip -V
	nft -v
} >"$out/machine.txt" 2>&1
cpus=1,2,4,8,16
n=$(nproc)
[ "$n" -ge 16 ] || cpus=$(seq -s, 1 "$n" | awk -F, '{s=""; for(i=1;i<=NF;i*=2) s=s (s?",":"") i; print s}')
"$d/bin/natreveal-lab" bench -cpus "$cpus" -modes queue,go-nfqueue,tcp-option,ip-id \
	-json "$out/scaling.json" "$@" >"$out/scaling.txt" 2>"$out/progress.txt"
