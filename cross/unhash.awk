# Function names without their per-build parts, for matching one build's functions to
# another's (cross/pick-order feeds it "name<TAB>demangled" lines, demangled by c++filt).
# A name's key drops legacy Rust hashes (`::h<hex>`), v0 crate disambiguators (`[<hex>]`),
# closure numbers and LLVM's and C compilers' suffixes (`(.llvm.<n>)`, `.constprop.0`). The
# two Rust manglings write generic code differently, so a v0 name without generic arguments
# (a std function, from a prebuilt v0 standard library) also matches by its path alone.
#   awk -F '\t' -f unhash.awk LIST      the keys of LIST's names, each once, in LIST's order
#   awk -F '\t' -f unhash.awk -v pass=1 KEYS NAMES
#                                       the names of NAMES whose key is in KEYS, in KEYS' order
function exact(n) {
  sub(/ \(.*\)$/, "", n)
  if (n !~ /::/) { sub(/\..*$/, "", n); return n }
  sub(/::h[0-9a-f]+$/, "", n)
  gsub(/\[[0-9a-f]+\]/, "", n)
  gsub(/\{\{closure\}\}/, "{closure}", n)
  gsub(/\{closure#[0-9]+\}/, "{closure}", n)
  return n
}
# The path alone: generic arguments removed, innermost first, after a name (`Vec<T>`) or as a
# turbofish (`::<T>`); then the brackets of qualified paths (`<Type>::f`). Sets `generic`.
function path(n,   pre, keep) {
  generic = 0
  while (match(n, /([A-Za-z0-9_]|::)<[^<>]*>/)) {
    generic = 1
    pre = substr(n, RSTART, RLENGTH)
    keep = (substr(pre, 1, 2) == "::") ? "" : substr(pre, 1, 1)
    n = substr(n, 1, RSTART - 1) keep substr(n, RSTART + RLENGTH)
  }
  gsub(/[<>]/, "", n)
  return n
}
pass != 1 {
  k = "=" exact($2)
  if ($1 ~ /^_R/) { p = path(exact($2)); if (!generic) k = "~" p }
  if (!(k in seen)) { seen[k] = 1; print k }
  next
}
FNR == NR { rank[$0] = FNR; next }
{
  e = exact($2)
  if (("=" e) in rank) r = rank["=" e]
  else if (("~" path(e)) in rank) r = rank["~" path(e)]
  else next
  if (r in names) v = names[r] "\n" $1; else v = $1
  names[r] = v
  if (r > top) top = r
}
END { for (r = 1; r <= top; r++) if (r in names) print names[r] }
