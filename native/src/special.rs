//! Survival functions of the chi-square and Kolmogorov distributions, in double precision.
//!
//! These replace scipy's `chi2.sf` and `kolmogorov` on the hot path. The chi-square survival
//! function with an integer number of degrees of freedom has a closed form as a finite sum of
//! positive terms (Abramowitz & Stegun 26.4.4 and 26.4.5), so it is computed without any
//! cancellation; the odd case needs `erfc`, computed here with a continued fraction or series
//! that converge to full precision.

use std::f64::consts::{FRAC_2_SQRT_PI, PI};

/// Largest argument of `exp` that does not underflow to a subnormal.
const EXP_FLOOR: f64 = -708.0;

/// P(X > x) for X chi-square distributed with `df` degrees of freedom (`df` >= 1).
pub fn chi2_sf(x: f64, df: u32) -> f64 {
    if x.is_nan() || df == 0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    let y = 0.5 * x;
    let half = df / 2;
    if df % 2 == 0 {
        // Q(m, y) = e^-y * sum_{i < m} y^i / i!
        poisson_tail(y, half, 0.0)
    } else {
        // Q(m + 1/2, y) = erfc(sqrt y) + e^-y * sum_{i=1..m} y^(i-1/2) / Gamma(i + 1/2)
        erfc(y.sqrt()) + poisson_tail(y, half, 0.5)
    }
}

/// e^-y * sum_{i=0..m-1} y^(i+s) / Gamma(i+s+1) for s in {0, 1/2}: every term positive.
fn poisson_tail(y: f64, m: u32, s: f64) -> f64 {
    if m == 0 {
        return 0.0;
    }
    // log of the first term: -y + s ln y - ln Gamma(s + 1)
    let log_first = if s == 0.0 {
        -y
    } else {
        // Gamma(3/2) = sqrt(pi) / 2
        -y + s * y.ln() - (0.5 * PI.sqrt()).ln()
    };
    if log_first >= EXP_FLOOR {
        let mut term = log_first.exp();
        let mut total = term;
        for i in 1..m {
            term *= y / (f64::from(i) + s);
            total += term;
        }
        return total;
    }
    // The first terms underflow: sum in log space, relative to the largest term.
    let mut logs = Vec::with_capacity(m as usize);
    let mut log_term = log_first;
    logs.push(log_term);
    for i in 1..m {
        log_term += y.ln() - (f64::from(i) + s).ln();
        logs.push(log_term);
    }
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top < -745.2 {
        return 0.0;
    }
    let scaled: f64 = logs.iter().map(|l| (l - top).exp()).sum();
    (top + scaled.ln()).exp()
}

/// The complementary error function, to about 1e-15 relative over the whole line.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        return 1.0 - erf_series(x);
    }
    if x > 27.3 {
        return 0.0; // below the smallest subnormal
    }
    erfc_continued_fraction(x)
}

/// erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), fine for |x| < 2.
fn erf_series(x: f64) -> f64 {
    // The series with only positive terms: erf(x) = 2/sqrt(pi) e^-x^2 sum 2^n x^(2n+1) / (2n+1)!!
    let x2 = x * x;
    let mut term = x;
    let mut total = x;
    let mut n = 0.0;
    loop {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        total += term;
        if term <= total * 1e-17 {
            break;
        }
    }
    FRAC_2_SQRT_PI * (-x2).exp() * total
}

/// erfc(x) for x >= 2 by the Laplace continued fraction, evaluated with the modified Lentz
/// method: erfc(x) = e^-x^2 / sqrt(pi) * 1 / (x + 1/2 / (x + 1 / (x + 3/2 / (x + ...)))).
fn erfc_continued_fraction(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..500 {
        let a = 0.5 * f64::from(k);
        d = x + a * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = x + a / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let step = c * d;
        f *= step;
        if (step - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (PI.sqrt() * f)
}

/// P(K > x) for Kolmogorov's limiting distribution (scipy's `kolmogorov`).
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x < 0.82 {
        // The theta-function form of the CDF converges fast for small x:
        // K(x) = sqrt(2 pi) / x * sum_{k odd} exp(-k^2 pi^2 / (8 x^2))
        let w = -PI * PI / (8.0 * x * x);
        let mut cdf = 0.0;
        let mut k = 1.0_f64;
        loop {
            let term = (w * k * k).exp();
            cdf += term;
            if term <= cdf * 1e-17 {
                break;
            }
            k += 2.0;
        }
        return 1.0 - (2.0 * PI).sqrt() / x * cdf;
    }
    // sf(x) = 2 sum_{k >= 1} (-1)^(k-1) exp(-2 k^2 x^2)
    let w = -2.0 * x * x;
    let mut total = 0.0;
    let mut sign = 1.0;
    let mut k = 1.0_f64;
    loop {
        let term = (w * k * k).exp();
        total += sign * term;
        if term <= total.abs() * 1e-17 || term == 0.0 {
            break;
        }
        sign = -sign;
        k += 1.0;
    }
    (2.0 * total).clamp(0.0, 1.0)
}

/// P(Z > x) for a standard normal Z (scipy's `norm.sf`).
pub fn norm_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile: x with P(Z <= x) = p, for 0 < p < 1 (scipy's `norm.ppf`;
/// -inf and inf at 0 and 1, NaN outside). Acklam's rational approximation, then one Halley
/// step on `erfc`, which brings it to about 1e-15 relative.
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        let r = (-2.0 * q.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    let x = if p < 0.024_25 {
        tail(p)
    } else if p > 1.0 - 0.024_25 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley's step on the error of P(Z <= x) = erfc(-x / sqrt 2) / 2
    let e = 0.5 * erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// ln of the binomial probability of `i` successes in `n` trials of probability `p`
/// (0 < p < 1), with ln C(n, i) summed term by term so no large logarithms cancel.
fn binom_log_pmf(i: u64, n: u64, p: f64) -> f64 {
    let small = i.min(n - i);
    let mut log_choose = 0.0;
    for j in 1..=small {
        log_choose += ((n - small + j) as f64 / j as f64).ln();
    }
    log_choose + i as f64 * p.ln() + (n - i) as f64 * (-p).ln_1p()
}

/// Sum of binomial probabilities from `start` on, stepping by `step` (+1 or -1) while the
/// terms shrink: every term positive, each from the previous by its exact ratio.
fn binom_tail(start: u64, n: u64, p: f64, upward: bool) -> f64 {
    let log_first = binom_log_pmf(start, n, p);
    let odds = p / (1.0 - p);
    let (mut i, mut term, mut total) = (start, 0.0, 0.0);
    let mut log_term = log_first;
    loop {
        let value = if log_term > -745.0 {
            log_term.exp()
        } else {
            0.0
        };
        if term == 0.0 && value == 0.0 && log_term < -745.0 {
            // far below the smallest double; the next terms are smaller still
            break;
        }
        term = value;
        total += term;
        if term <= total * 1e-17 {
            break;
        }
        if upward {
            if i == n {
                break;
            }
            log_term += ((n - i) as f64 / (i + 1) as f64).ln() + odds.ln();
            i += 1;
        } else {
            if i == 0 {
                break;
            }
            log_term += (i as f64 / (n - i + 1) as f64).ln() - odds.ln();
            i -= 1;
        }
    }
    total
}

/// P(X <= k) for X binomial with `n` trials of probability `p` (scipy's `binom.cdf`).
pub fn binom_cdf(k: i64, n: u64, p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if k < 0 {
        return 0.0;
    }
    let k = k as u64;
    if k >= n || p == 0.0 {
        return 1.0;
    }
    if p == 1.0 {
        return 0.0;
    }
    let mode = ((n + 1) as f64 * p).floor() as u64;
    if k < mode {
        binom_tail(k, n, p, false).min(1.0)
    } else {
        (1.0 - binom_tail(k + 1, n, p, true)).max(0.0)
    }
}

/// P(X > k) for X binomial with `n` trials of probability `p` (scipy's `binom.sf`).
pub fn binom_sf(k: i64, n: u64, p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if k < 0 {
        return 1.0;
    }
    let k = k as u64;
    if k >= n || p == 0.0 {
        return 0.0;
    }
    if p == 1.0 {
        return 1.0;
    }
    let mode = ((n + 1) as f64 * p).floor() as u64;
    if k + 1 > mode {
        binom_tail(k + 1, n, p, true).min(1.0)
    } else {
        (1.0 - binom_tail(k, n, p, false)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_quantile_inverts_the_tail() {
        for &p in &[1e-12, 1e-6, 0.01, 0.024, 0.3, 0.5, 0.8, 0.976, 0.999_999] {
            let x = norm_ppf(p);
            assert!((norm_sf(-x) - p).abs() <= 1e-12 * p.max(1e-3), "p = {p}");
        }
        assert_eq!(norm_ppf(0.5), 0.0);
        assert!((norm_ppf(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert_eq!(norm_ppf(0.0), f64::NEG_INFINITY);
        assert_eq!(norm_ppf(1.0), f64::INFINITY);
        assert!(norm_ppf(1.5).is_nan() && norm_ppf(f64::NAN).is_nan());
    }

    #[test]
    fn binomial_tails_by_hand() {
        // n = 3, p = 1/2: P(X <= 1) = 4/8
        assert!(close(binom_cdf(1, 3, 0.5), 0.5, 1e-15));
        assert!(close(binom_sf(1, 3, 0.5), 0.5, 1e-15));
        assert!(close(binom_sf(2, 3, 0.5), 0.125, 1e-15));
        assert_eq!(binom_sf(-1, 10, 0.3), 1.0);
        assert_eq!(binom_cdf(-1, 10, 0.3), 0.0);
        assert_eq!(binom_sf(10, 10, 0.3), 0.0);
        assert_eq!(binom_cdf(10, 10, 0.3), 1.0);
        assert_eq!(binom_sf(4, 10, 1.0), 1.0);
        assert_eq!(binom_sf(4, 10, 0.0), 0.0);
        assert!(binom_sf(4, 10, 1.5).is_nan());
        assert!(close(norm_sf(0.0), 0.5, 1e-16));
        assert!(close(norm_sf(1.959_963_984_540_054), 0.025, 1e-13));
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn chi2_sf_known_values() {
        // df = 2: exactly e^(-x/2)
        assert!(close(chi2_sf(3.0, 2), (-1.5f64).exp(), 1e-15));
        // df = 1: erfc(sqrt(x/2)); 3.841458820694124 is the 95% quantile
        assert!(close(chi2_sf(3.841_458_820_694_124, 1), 0.05, 1e-13));
        assert_eq!(chi2_sf(0.0, 5), 1.0);
        assert_eq!(chi2_sf(f64::INFINITY, 5), 0.0);
        assert!(chi2_sf(f64::NAN, 5).is_nan());
        assert!(chi2_sf(1.0, 0).is_nan());
    }

    #[test]
    fn chi2_sf_far_tail_is_finite_and_ordered() {
        let a = chi2_sf(1_300.0, 9);
        let b = chi2_sf(1_400.0, 9);
        assert!(a > b && b > 0.0, "{a} {b}");
        assert_eq!(chi2_sf(1e6, 9), 0.0);
    }

    #[test]
    fn erfc_known_values() {
        assert!(close(erfc(0.0), 1.0, 1e-16));
        assert!(close(erfc(1.0), 0.157_299_207_050_285_13, 1e-15));
        assert!(close(erfc(3.0), 2.209_049_699_858_544e-5, 1e-14));
        assert!(close(erfc(-1.0), 1.842_700_792_949_715, 1e-15));
        assert_eq!(erfc(30.0), 0.0);
    }

    #[test]
    fn kolmogorov_sf_known_values() {
        assert_eq!(kolmogorov_sf(0.0), 1.0);
        // 1.3580986393225505 is the 95% quantile of the Kolmogorov distribution
        assert!(close(kolmogorov_sf(1.358_098_639_322_550_5), 0.05, 1e-12));
        let left = kolmogorov_sf(0.819_999_999);
        let right = kolmogorov_sf(0.820_000_001);
        assert!(
            close(left, right, 1e-8),
            "continuous at the cut-over: {left} {right}"
        );
        assert!(kolmogorov_sf(10.0) < 1e-80);
    }
}
