//! Reading samples out of the Prometheus text exposition (`GET /metrics`).
//!
//! A sample line is `name{labels} value`; these helpers compare names and
//! label sets as text, exactly as the daemon writes them (labels in its
//! order), which is all a test of that daemon needs.

/// The value of one sample, named as it appears in the exposition
/// (`name` or `name{label="value",…}`), if present.
pub fn sample(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The sum of every sample of metric `name`, whatever its labels (0 when
/// there is none).
pub fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // Not `sum()`: an empty f64 sum is -0, which prints as "-0".
        .fold(0.0, |a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP newswatch_alerts_published_total Alerts published.
# TYPE newswatch_alerts_published_total counter
newswatch_alerts_published_total{rule=\"a\",severity=\"high\"} 3
newswatch_alerts_published_total{rule=\"b\",severity=\"low\"} 4
newswatch_alerts_published_total_extra 100
newswatch_rules_loaded 2
";

    #[test]
    fn samples() {
        let check = |name: &str, expected: Option<f64>| {
            assert_eq!(sample(TEXT, name), expected, "{name}");
        };
        check("newswatch_rules_loaded", Some(2.0));
        check(
            "newswatch_alerts_published_total{rule=\"b\",severity=\"low\"}",
            Some(4.0),
        );
        check("newswatch_alerts_published_total", None);
        check("newswatch_rules", None);
    }

    #[test]
    fn sums() {
        let check = |name: &str, expected: f64| {
            assert_eq!(sum(TEXT, name), expected, "{name}");
        };
        check("newswatch_alerts_published_total", 7.0);
        check("newswatch_rules_loaded", 2.0);
        check("newswatch_missing", 0.0);
    }
}
