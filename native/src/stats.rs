//! Drift statistics between a reference distribution and a window, on binned counts.
//!
//! Numeric features are binned on the reference's percentile edges, so KS and Wasserstein are
//! computed on the binned ECDF (a slight underestimate of the exact statistics, never an
//! overestimate). Every function is pure and deterministic.

use crate::special::{chi2_sf, kolmogorov_sf};

/// Floor for empty bins in PSI and Jensen-Shannon: an empty bin is a large but finite term.
pub const EPSILON: f64 = 1e-4;

fn total(counts: &[f64]) -> f64 {
    counts.iter().sum()
}

fn proportions(counts: &[f64]) -> impl Iterator<Item = f64> + '_ {
    let sum = total(counts);
    counts
        .iter()
        .map(move |&c| if sum > 0.0 { c / sum } else { 0.0 })
}

/// Population stability index: sum (c - r) ln(c / r) over bins, empty bins floored.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    proportions(reference)
        .zip(proportions(current))
        .map(|(r, c)| {
            let (r, c) = (r.max(EPSILON), c.max(EPSILON));
            (c - r) * (c / r).ln()
        })
        .fold(0.0, |acc, term| acc + term)
}

/// Jensen-Shannon distance (square root of the divergence, base 2; between 0 and 1).
pub fn jensen_shannon(reference: &[f64], current: &[f64]) -> f64 {
    let mut divergence = 0.0;
    for (r, c) in proportions(reference).zip(proportions(current)) {
        let m = (r + c) / 2.0;
        if r > 0.0 {
            divergence += 0.5 * r * (r / m).log2();
        }
        if c > 0.0 {
            divergence += 0.5 * c * (c / m).log2();
        }
    }
    divergence.max(0.0).sqrt()
}

/// Chi-square test of homogeneity of two binned samples: (statistic, p-value).
pub fn chi_square(reference: &[f64], current: &[f64]) -> (f64, f64) {
    let (n_ref, n_cur) = (total(reference), total(current));
    if n_ref <= 0.0 || n_cur <= 0.0 {
        return (0.0, 1.0);
    }
    let all = n_ref + n_cur;
    let mut statistic = 0.0;
    let mut bins = 0u32;
    for (&r, &c) in reference.iter().zip(current) {
        let column = r + c;
        if column <= 0.0 {
            continue;
        }
        bins += 1;
        let expected_ref = column * n_ref / all;
        let expected_cur = column * n_cur / all;
        statistic +=
            (r - expected_ref).powi(2) / expected_ref + (c - expected_cur).powi(2) / expected_cur;
    }
    if bins < 2 {
        return (0.0, 1.0);
    }
    (statistic, chi2_sf(statistic, bins - 1))
}

/// Two-sample Kolmogorov-Smirnov on binned ECDFs: (statistic D, asymptotic p-value).
pub fn ks_binned(reference: &[f64], current: &[f64]) -> (f64, f64) {
    let (n_ref, n_cur) = (total(reference), total(current));
    if n_ref <= 0.0 || n_cur <= 0.0 {
        return (0.0, 1.0);
    }
    let (mut cum_ref, mut cum_cur, mut distance) = (0.0, 0.0, 0.0f64);
    for (&r, &c) in reference.iter().zip(current) {
        cum_ref += r;
        cum_cur += c;
        distance = distance.max((cum_ref / n_ref - cum_cur / n_cur).abs());
    }
    let effective = (n_ref * n_cur / (n_ref + n_cur)).sqrt();
    (distance, kolmogorov_sf(effective * distance))
}

/// Wasserstein-1 distance on binned ECDFs, divided by `scale` (the reference std).
///
/// The ECDF difference after bin i holds over the gap to the next edge (`widths[i]`).
pub fn wasserstein_binned(reference: &[f64], current: &[f64], widths: &[f64], scale: f64) -> f64 {
    let (n_ref, n_cur) = (total(reference), total(current));
    if n_ref <= 0.0 || n_cur <= 0.0 || scale <= 0.0 {
        return 0.0;
    }
    let (mut cum_ref, mut cum_cur, mut area) = (0.0, 0.0, 0.0);
    for ((&r, &c), &width) in reference.iter().zip(current).zip(widths) {
        cum_ref += r;
        cum_cur += c;
        area += (cum_ref / n_ref - cum_cur / n_cur).abs() * width;
    }
    area / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_score_zero() {
        let counts = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(psi(&counts, &counts), 0.0);
        assert_eq!(jensen_shannon(&counts, &counts), 0.0);
        let doubled: Vec<f64> = counts.iter().map(|c| c * 2.0).collect();
        assert_eq!(chi_square(&counts, &doubled), (0.0, 1.0));
        assert_eq!(ks_binned(&counts, &counts).0, 0.0);
    }

    #[test]
    fn psi_known_value() {
        let expected = 0.1 * 1.2f64.ln() - 0.1 * 0.8f64.ln();
        assert!((psi(&[50.0, 50.0], &[60.0, 40.0]) - expected).abs() < 1e-15);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(chi_square(&[0.0, 0.0], &[1.0, 2.0]), (0.0, 1.0));
        assert_eq!(chi_square(&[5.0, 0.0], &[3.0, 0.0]), (0.0, 1.0));
        assert_eq!(ks_binned(&[0.0], &[1.0]), (0.0, 1.0));
        assert_eq!(wasserstein_binned(&[1.0], &[1.0], &[1.0], 0.0), 0.0);
        assert!((jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-15);
    }
}
