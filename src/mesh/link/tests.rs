use super::*;

#[test]
fn backoff_doubles_to_the_cap_with_bounded_jitter() {
    let min = Duration::from_secs(1);
    let max = Duration::from_secs(60);
    for n in 0..12 {
        let base = Duration::from_secs((1u64 << n).min(60));
        for _ in 0..50 {
            let d = backoff_delay(n, min, max);
            assert!(d >= base && d <= base.mul_f64(1.25), "n={n} d={d:?}");
        }
    }
    assert!(backoff_delay(u32::MAX, min, max) <= Duration::from_secs(75));
}
