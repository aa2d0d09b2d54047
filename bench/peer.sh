# Sourced by the bench scripts: where the llama.cpp peer is. scripts/peer-llamacpp.sh builds it
# into .peer/ (PEER_DIR overrides the folder; ORACLE the folder of its tools and libraries).
peer_dir=${PEER_DIR:-.peer}
peer_bin=${ORACLE:-$peer_dir/llama.cpp/bin}
peer_hint="build the llama.cpp peer with scripts/peer-llamacpp.sh (PEER_AVX=1 adds the AVX2 and AVX CPU variants)"
need_peer() {  # files... -> exits with one line when one is missing
  local x
  for x; do [ -e "$x" ] || { echo "missing $x: $peer_hint" >&2; exit 1; }; done
}
