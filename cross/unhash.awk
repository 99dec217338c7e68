# Function names without their per-build parts, for matching one build's names to another's
# (cross/zig-link). Legacy Rust names lose their `17h<hash>E` suffix, v0 names their crate
# disambiguators (`Cs<base62>_`), every name LLVM's `.llvm.<n>` suffix, and C names whatever
# a compiler appended after a dot (`.constprop.0`, `.part.1`).
#   awk -f unhash.awk LIST              the names of LIST without hashes, each once, in order
#   awk -f unhash.awk -v pass=1 KEYS NAMES
#                                       the NAMES whose hashless form is in KEYS, in KEYS' order
function key(n) {
  sub(/\.llvm\.[0-9]+$/, "", n)
  if (n ~ /^_ZN/) sub(/17h[0-9a-f]+E$/, "E", n)
  else if (n ~ /^_R/) gsub(/Cs[0-9A-Za-z]+_/, "C", n)
  else sub(/\..*$/, "", n)
  return n
}
pass != 1 { k = key($0); if (!(k in seen)) { seen[k] = 1; print k } next }
FNR == NR { rank[$0] = FNR; next }
{
  k = key($0)
  if (!(k in rank)) next
  r = rank[k]
  if (r in names) v = names[r] "\n" $0; else v = $0
  names[r] = v
  if (r > top) top = r
}
END { for (r = 1; r <= top; r++) if (r in names) print names[r] }
