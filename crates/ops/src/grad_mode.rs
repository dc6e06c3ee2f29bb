//! Whether candle keeps gradients differentiable.

/// Whether candle keeps gradients differentiable (`CANDLE_GRAD_DO_NOT_DETACH` set, read as
/// candle 0.11 reads it: any value but empty or `0`). vaekit's fused ops have backward ops
/// that are not differentiable, so their callers compose from candle primitives when this
/// holds, and gradients of gradients stay exact. Read once.
pub fn second_order_gradients() -> bool {
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        std::env::var("CANDLE_GRAD_DO_NOT_DETACH").is_ok_and(|s| !s.is_empty() && s != "0")
    })
}
