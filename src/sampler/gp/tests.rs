//! Tests of `gp`.

use super::*;

#[test]
fn log_h_is_smooth_across_its_two_forms_and_erfc_is_accurate() {
    let exact = |z: f64| {
        (z * 0.5 * erfc(-z / std::f64::consts::SQRT_2)
            + (-0.5 * z * z).exp() / std::f64::consts::TAU.sqrt())
        .ln()
    };
    assert!((log_h(-5.0) - exact(-5.0)).abs() < 1e-12);
    assert!(
        (log_h(-19.99) - log_h(-20.01)).abs() < 0.41,
        "{}",
        log_h(-19.99) - log_h(-20.01)
    );
    // The series against the direct form where both hold.
    let series = |z: f64| {
        let q = 1.0 / (z * z);
        -0.5 * z * z - 0.5 * std::f64::consts::TAU.ln()
            + q.ln()
            + (1.0 - 3.0 * q + 15.0 * q * q - 105.0 * q * q * q).ln()
    };
    assert!((series(-15.0) - exact(-15.0)).abs() < 1e-4);
    assert!(log_h(-40.0).is_finite() && log_h(-40.0) < log_h(-39.0));
    assert!((erfc(0.5) - 0.479_500_122_186_953_5).abs() < 1e-7);
    assert!((erfc(3.0) / 2.209_049_699_858_544e-5 - 1.0).abs() < 1e-6);
}
