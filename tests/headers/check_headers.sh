#!/usr/bin/env bash
# check_headers.sh DIR: fails when a public header in DIR (resnet/*.h) includes or names oneDNN,
# HDF5, nlohmann-json (or another private dependency). `//` comments are ignored.
set -euo pipefail
dir=${1:?usage: check_headers.sh DIR}
shopt -s nullglob
headers=("$dir"/*.h)
if [ ${#headers[@]} -eq 0 ]; then
  echo "check_headers: no headers in $dir" >&2
  exit 1
fi
pattern='#[[:space:]]*include[[:space:]]*[<"](dnnl|oneapi/|mkldnn|hdf5|H5[A-Za-z]*\.h|nlohmann/|json\.hpp|CLI/|fmt/|onnx|mpi\.h)'
pattern+='|dnnl::|dnnl_[a-z_]+_t|mkldnn|\bhid_t\b|\bherr_t\b|\bhsize_t\b|\bH5[A-Z][a-z]?[A-Za-z_]*[[:space:]]*\(|nlohmann|\bjson::'
bad=0
for h in "${headers[@]}"; do
  # Strip // comments, keep line numbers.
  if hits=$(sed -e 's://.*$::' "$h" | grep -nE "$pattern"); then
    while IFS= read -r hit; do
      echo "$h:$hit" >&2
    done <<<"$hits"
    bad=1
  fi
done
if [ $bad -ne 0 ]; then
  echo "check_headers: the public headers above expose private dependency types" >&2
  exit 1
fi
echo "check_headers: ${#headers[@]} headers in $dir: no oneDNN, HDF5 or JSON types"
