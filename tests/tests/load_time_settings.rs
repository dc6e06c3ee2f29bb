//! A program that links vaekit through its crates (here: vaekit-core with its default
//! `fast-alloc` feature, never calling anything) gets the binary's settings before `main`.
//! The test harness's `main` calls nothing of vaekit's, so the variables can only come from
//! the load-time constructor, or from the environment the test was started with.

#[test]
#[cfg(any(target_os = "linux", target_os = "android"))]
fn linking_the_crates_applies_the_settings_at_load_time() {
    // Name the crate, as any user of it does.
    let _ = vaekit_core::SeededNoise::new(0);
    assert!(std::env::var_os("CANDLE_NUM_THREADS").is_some());
    let n = std::env::var("RAYON_NUM_THREADS").expect("RAYON_NUM_THREADS set at load");
    assert!(n.parse::<usize>().is_ok_and(|n| n > 0), "{n}");
}
