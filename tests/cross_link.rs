//! The name matching behind the zig route's function order (cross/pick-order, used by
//! cross/zig-link): a list made from one build's symbols picks the same functions in another
//! build, whose hashes, mangling and C compiler differ, in the list's order, and nothing else.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_list_from_one_build_picks_the_same_functions_of_another_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list");
    // As made on x86_64: legacy names, two copies of one generic (hashes differ), a v0 name
    // from the prebuilt standard library, C names with the suffix gcc gives its clones.
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
    // Another target's build: other hashes, legacy names only, LLVM's suffix, clang's C
    // names, functions the list does not name (one generic over the type the v0 name is
    // about), listed in another order.
    let names = dir.path().join("names");
    std::fs::write(
        &names,
        "keywordCode\n\
         _ZN5tokio4task5spawn17haaaaaaaaaaaaaaaaE\n\
         _ZN5tokio4task5spawn17hbbbbbbbbbbbbbbbbE.llvm.123\n\
         _ZN4core3fmt5write17hfedcba9876543210E\n\
         _ZN4core3fmt9Formatter3pad17h0000000000000000E\n\
         _ZN5alloc7raw_vec20RawVecInner$LT$A$GT$10deallocate17h990433f9b35bea9fE\n\
         _ZN4core3ptr48drop_in_place$LT$alloc..raw_vec..RawVecInner$GT$17h1234567812345678E\n\
         sqlite3VdbeExec\n\
         sqlite3Parser\n",
    )
    .unwrap();
    let out = Command::new(root().join("cross/pick-order"))
        .arg(&list)
        .arg(&names)
        .output()
        .expect("cross/pick-order (needs c++filt, Debian package binutils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "_ZN4core3fmt5write17hfedcba9876543210E\n\
         sqlite3VdbeExec\n\
         _ZN5tokio4task5spawn17haaaaaaaaaaaaaaaaE\n\
         _ZN5tokio4task5spawn17hbbbbbbbbbbbbbbbbE.llvm.123\n\
         _ZN5alloc7raw_vec20RawVecInner$LT$A$GT$10deallocate17h990433f9b35bea9fE\n\
         keywordCode\n"
    );
}
