//! The name matching behind the zig route's function order (cross/unhash.awk, used by
//! cross/zig-link): a list made from one build's symbols picks the same functions in another
//! build, whose hashes differ, in the list's order, and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn awk(args: &[&str], files: &[&Path]) -> String {
    let out = Command::new("awk")
        .arg("-f")
        .arg(root().join("cross/unhash.awk"))
        .args(args)
        .args(files)
        .output()
        .expect("awk");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_list_from_one_build_picks_the_same_functions_of_another_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list");
    // As made on x86_64: two copies of one generic (hashes differ), a v0 name, C names with
    // the suffixes gcc gives its clones.
    std::fs::write(
        &list,
        "_ZN4core3fmt5write17h0123456789abcdefE\n\
         sqlite3VdbeExec\n\
         _ZN5tokio4task5spawn17h1111111111111111E\n\
         _ZN5tokio4task5spawn17h2222222222222222E\n\
         _RNvMs2_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner10deallocateCsduwmD7cSIQq_5gimli\n\
         keywordCode.constprop.0\n",
    )
    .unwrap();
    let keys = awk(&[], &[&list]);
    assert_eq!(
        keys,
        "_ZN4core3fmt5writeE\nsqlite3VdbeExec\n_ZN5tokio4task5spawnE\n\
         _RNvMs2_NtC5alloc7raw_vecNtB5_11RawVecInner10deallocateC5gimli\nkeywordCode\n"
    );
    let keys_file = dir.path().join("keys");
    std::fs::write(&keys_file, &keys).unwrap();
    // Another target's build: other hashes and disambiguators, clang's suffixes, functions
    // the list does not name, listed in another order.
    let defined = dir.path().join("defined");
    std::fs::write(
        &defined,
        "keywordCode\n\
         _ZN5tokio4task5spawn17haaaaaaaaaaaaaaaaE\n\
         _ZN5tokio4task5spawn17hbbbbbbbbbbbbbbbbE.llvm.123\n\
         _ZN4core3fmt5write17hfedcba9876543210E\n\
         _ZN4core3fmt9Formatter3pad17h0000000000000000E\n\
         _RNvMs2_NtCs9XyZ_5alloc7raw_vecNtB5_11RawVecInner10deallocateCsQ1_5gimli\n\
         sqlite3VdbeExec\n\
         sqlite3Parser\n",
    )
    .unwrap();
    let order = awk(&["-v", "pass=1"], &[&keys_file, &defined]);
    assert_eq!(
        order,
        "_ZN4core3fmt5write17hfedcba9876543210E\n\
         sqlite3VdbeExec\n\
         _ZN5tokio4task5spawn17haaaaaaaaaaaaaaaaE\n\
         _ZN5tokio4task5spawn17hbbbbbbbbbbbbbbbbE.llvm.123\n\
         _RNvMs2_NtCs9XyZ_5alloc7raw_vecNtB5_11RawVecInner10deallocateCsQ1_5gimli\n\
         keywordCode\n"
    );
}
