#!/usr/bin/env bash
# The same consumer app (FirstCalls) built from the package packed at two commits, run in alternating
# pairs, each run a fresh process: what a packaging change does to what users see. Prints each pair and
# the medians.  Run:  bash bench/DeployBench/compare_packages.sh <before-commit> [runs] [scenarios...]
set -euo pipefail
before=$1; runs=${2:-9}; shift $(( $# >= 2 ? 2 : 1 ))
scenarios=("${@:-pool apply map chunk1 steady}"); scenarios=(${scenarios[*]})
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/mp-compare-XXXX)
stamp=$(date +%s)
trap 'git -C "$repo" worktree remove --force "$work/before-src" >/dev/null 2>&1 || true; rm -rf "$work" "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/multiprocessing/*cmp*' EXIT
git -C "$repo" worktree add -q --detach "$work/before-src" "$before"
pack() { dotnet pack "$1/src/Multiprocessing/Multiprocessing.csproj" -c Release -o "$work/feed-$2" --artifacts-path "$work/artifacts-$2" -p:VersionSuffix="cmp$2.$stamp" -v q -nologo >/dev/null; }
pack "$work/before-src" before
pack "$repo" after
for side in before after; do
  mkdir -p "$work/$side"; cp "$here/FirstCalls/Program.cs" "$here/FirstCalls/FirstCalls.csproj" "$work/$side/"
  printf '<configuration><packageSources><add key="under-test" value="%s" /></packageSources></configuration>\n' "$work/feed-$side" > "$work/$side/nuget.config"
  version=$(basename "$(ls "$work/feed-$side"/Multiprocessing.*.nupkg | grep -v snupkg)" .nupkg); version=${version#Multiprocessing.}
  (cd "$work/$side" && dotnet build -c Release -o "$work/$side/out" -p:MultiprocessingVersion="$version" -v q -nologo >/dev/null)
done
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for scenario in "${scenarios[@]}"; do
  : > "$work/b"; : > "$work/a"
  for _ in $(seq "$runs"); do
    b=$("$work/before/out/FirstCalls" "$scenario"); a=$("$work/after/out/FirstCalls" "$scenario")
    echo "$b" >> "$work/b"; echo "$a" >> "$work/a"; echo "$scenario before $b after $a"
  done
  echo "== $scenario: median before $(median < "$work/b"), after $(median < "$work/a") ($runs alternating pairs)"
done
