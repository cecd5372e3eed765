#!/usr/bin/env bash
# The fabric simulator's reference cases (issue 15, docs/SIM.md): the real SRD core on fat
# trees, beside htsim's published figures. Each case runs `opensrd sim --json --csv` and keeps
# its outputs in OUT_DIR; a table goes to stdout. Heavy: the 1024-host cases take minutes of
# CPU each; 8192 hosts only with --big.
# usage: bench/sim_fabric.sh OPENSRD_BIN OUT_DIR [--big]
set -euo pipefail
bin=$1
out=$2
big=${3:-}
mkdir -p "$out"
k16=fattree:k=16
k8=fattree:k=8

run() {  # run NAME ARGS...: one case; prints its row
  local name=$1; shift
  local rc=0
  /usr/bin/time -f "%U %M" -o "$out/$name.time" \
    "$bin" sim --quiet --json --csv "$out/$name.csv" "$@" >"$out/$name.json" || rc=$?
  read -r user rss_kb <"$out/$name.time"
  jq -r --arg n "$name" --arg u "$user" --arg rc "$rc" \
    '[$n, .hosts, .paths, .fct_us.min, .fct_us.p50, .fct_us.p99, .fct_us.max, .ideal_fct_us,
      .makespan_us, .ideal_makespan_us, .goodput_frac, .retransmits, .lost_messages,
      .sim.events, $u, .sim.wall_s, .sim.peak_rss_mb, $rc] | @tsv' "$out/$name.json"
}

grep -m1 'model name' /proc/cpuinfo
printf 'case\thosts\tpaths\tfct_min\tfct_p50\tfct_p99\tfct_max\tideal_fct\tmakespan\t'
printf 'ideal_makespan\tgoodput_frac\tretx\tlost\tevents\tuser_s\twall_s\trss_mb\texit\n'
run idle_2MB --topology $k16 --workload incast:n=1,size=2MB
run perm1024_128 --topology $k16 --workload permutation:size=2MB --paths 128
run perm1024_1 --topology $k16 --workload permutation:size=2MB --paths 1
run perm1024_nocc --topology $k16 --workload permutation:size=2MB --paths 128 --no-cc
run degraded8 --topology $k16 --workload permutation:size=2MB --paths 128 --degrade top:8=0.25
run incast15 --topology $k16 --workload incast:n=15,size=2MB
run incast1023 --topology $k16 --workload incast:n=1023,size=100KB
run fail128 --topology $k8 --workload permutation:size=8MiB --fail core0-agg0@200us \
  --bucket-us 1
run ring128 --topology $k8 --workload ring:size=16MiB
run dist128 --topology $k8 --workload dist:load=0.5,flows=2000
if [ "$big" = --big ]; then
  run perm8192_128 --topology fattree:k=32 --workload permutation:size=2MB --paths 128
fi
