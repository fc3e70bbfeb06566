#!/usr/bin/env bash
# Every way an app ships, built from the packed package as a user builds it: the time from a fresh
# process's start through the first result of its first pool of 2 workers (median of N runs), beside
# CPython's spawn Pool(2) in the same run. Run:  bash bench/DeployBench/deploy_bench.sh [runs]
set -euo pipefail
runs=${1:-11}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/mp-deploy-bench-XXXX)
trap 'rm -rf "$work"; rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}/multiprocessing/$version"' EXIT
version=""
rid=$(dotnet --info | sed -n 's/^ *RID: *//p' | head -n 1)

dotnet pack "$repo/src/Multiprocessing/Multiprocessing.csproj" -c Release -o "$work/feed" --artifacts-path "$work/artifacts" \
  -p:VersionSuffix="bench.$(date +%s)" -v q -nologo >/dev/null
version=$(basename "$(ls "$work"/feed/Multiprocessing.*.nupkg | grep -v snupkg)" .nupkg); version=${version#Multiprocessing.}
printf '<configuration><packageSources><add key="under-test" value="%s" /></packageSources></configuration>\n' "$work/feed" > "$work/nuget.config"
mkdir -p "$work/app" "$work/empty-path"
cp "$here/Program.cs" "$here/DeployBench.csproj" "$work/app/"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
measure() { # name, hide-dotnet, command...
  local name=$1 hide=$2; shift 2
  local ms=()
  for _ in $(seq "$runs"); do
    if [ "$hide" = yes ]; then ms+=("$(env -u DOTNET_ROOT PATH="$work/empty-path" "$@")"); else ms+=("$("$@")"); fi
  done
  printf '%s\t%s\n' "$name" "$(printf '%s\n' "${ms[@]}" | median)"
}
publish() { # folder, arguments...
  local out=$1; shift
  (cd "$work/app" && dotnet "$@" -c Release -o "$work/$out" -p:MultiprocessingVersion="$version" -v q -nologo >/dev/null)
}

publish build build
publish fd publish
publish sc publish -r "$rid" --self-contained
publish sfsc publish -r "$rid" --self-contained -p:PublishSingleFile=true
publish sffd publish -r "$rid" --no-self-contained -p:PublishSingleFile=true
publish r2r publish -r "$rid" --no-self-contained -p:PublishReadyToRun=true
publish r2rsc publish -r "$rid" --self-contained -p:PublishReadyToRun=true -p:PublishSingleFile=true

python=$(for _ in $(seq "$runs"); do python3 "$here/cold_pool.py"; done | median)
{
  measure "dotnet run (apphost)" no "$work/build/DeployBench"
  measure "dotnet app.dll" no dotnet "$work/build/DeployBench.dll"
  measure "publish, framework-dependent" no "$work/fd/DeployBench"
  measure "publish, self-contained (no dotnet on PATH)" yes "$work/sc/DeployBench"
  measure "single-file, self-contained (no dotnet on PATH)" yes "$work/sfsc/DeployBench"
  measure "single-file, framework-dependent" yes "$work/sffd/DeployBench"
  measure "ReadyToRun, framework-dependent" no "$work/r2r/DeployBench"
  measure "ReadyToRun single-file, self-contained" yes "$work/r2rsc/DeployBench"
} | awk -F'\t' -v py="$python" -v runs="$runs" '
  BEGIN { printf "| Deployment (%s runs, median) | process start to first result, ms | CPython spawn Pool(2), ms | CPython / this |\n|---|---:|---:|---:|\n", runs }
  { printf "| %s | %d | %d | %.2fx |\n", $1, $2, py, py / $2 }'
