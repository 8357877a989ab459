//! The `/metrics` exposition: OpenMetrics text (version 1.0.0), the format
//! prometheus-client writes its registries in and Prometheus asks for
//! first. Every family the nodes write by hand (per-stream gauges, latency
//! summaries, the access log's, recording's, WebRTC's and chat's counters)
//! goes through [`family`], so each is written one way: HELP and TYPE once
//! per family, a counter's samples named `NAME_total` under a family named
//! `NAME`, label values escaped, special floats spelled as the format
//! wants, and one `# EOF` at the very end ([`finish`]).

use std::fmt::Write;

/// The `Content-Type` of a `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; its samples are `NAME_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Quantiles (`NAME{quantile="…"}`) and a `NAME_count`.
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// The samples of one family, written into the exposition as they come.
pub struct Samples<'a> {
    out: &'a mut String,
    name: String,
    kind: Kind,
}

/// Starts family `name` of `kind` in `out` with its HELP and TYPE lines.
/// `name` is the family's name: a counter's is without `_total` (a name
/// given with it is trimmed), its samples get it. `help` is one sentence;
/// a full stop is added when it has none.
pub fn family<'a>(out: &'a mut String, name: &str, kind: Kind, help: &str) -> Samples<'a> {
    let name = match kind {
        Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
        Kind::Gauge | Kind::Summary => name,
    }
    .to_string();
    let stop = if help.ends_with('.') { "" } else { "." };
    let _ = writeln!(out, "# HELP {name} {}{stop}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
    Samples { out, name, kind }
}

impl Samples<'_> {
    /// One sample with `labels` (name, value pairs; none for a family of
    /// one series).
    pub fn sample<K: AsRef<str>, V: AsRef<str>>(&mut self, labels: &[(K, V)], value: f64) {
        let suffix = match self.kind {
            Kind::Counter => "_total",
            Kind::Gauge | Kind::Summary => "",
        };
        self.line(suffix, labels, value);
    }

    /// A summary's `NAME_count`.
    pub fn count(&mut self, n: u64) {
        let _ = writeln!(self.out, "{}_count {n}", self.name);
    }

    fn line<K: AsRef<str>, V: AsRef<str>>(&mut self, suffix: &str, labels: &[(K, V)], value: f64) {
        let out = &mut *self.out;
        out.push_str(&self.name);
        out.push_str(suffix);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}=\"{}\"", k.as_ref(), escape_label(v.as_ref()));
            }
            out.push('}');
        }
        out.push(' ');
        push_value(out, value);
        out.push('\n');
    }
}

/// A family of one unlabelled series.
pub fn single(out: &mut String, name: &str, kind: Kind, help: &str, value: f64) {
    family(out, name, kind, help).sample::<&str, &str>(&[], value);
}

/// Ends an exposition: the one `# EOF` line.
pub fn finish(out: &mut String) {
    out.push_str("# EOF\n");
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_label(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

fn escape_help(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\").replace('\n', "\\n").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_family_is_named_without_total_and_its_samples_with_it() {
        let mut out = String::new();
        family(&mut out, "x_sends_total", Kind::Counter, "Sends").sample(&[("io", "std")], 3.0);
        assert_eq!(
            out,
            "# HELP x_sends Sends.\n# TYPE x_sends counter\nx_sends_total{io=\"std\"} 3\n"
        );
    }

    #[test]
    fn gauges_keep_their_name_and_take_several_labels() {
        let mut out = String::new();
        let mut f = family(&mut out, "x_lag_ms", Kind::Gauge, "Lag.");
        f.sample(&[("stream", "cam"), ("rendition", "720p")], 1.5);
        f.sample::<&str, &str>(&[], 0.0);
        assert_eq!(
            out,
            "# HELP x_lag_ms Lag.\n# TYPE x_lag_ms gauge\n\
             x_lag_ms{stream=\"cam\",rendition=\"720p\"} 1.5\nx_lag_ms 0\n"
        );
    }

    #[test]
    fn summaries_have_quantiles_and_a_count() {
        let mut out = String::new();
        let mut f = family(&mut out, "x_seconds", Kind::Summary, "Time");
        f.sample(&[("quantile", "0.5")], 0.25);
        f.count(7);
        assert!(out.ends_with("x_seconds{quantile=\"0.5\"} 0.25\nx_seconds_count 7\n"));
    }

    #[test]
    fn label_values_and_help_are_escaped_and_special_floats_spelled_out() {
        let mut out = String::new();
        let mut f = family(&mut out, "x", Kind::Gauge, "a \\ b\nc");
        f.sample(&[("u", "say \"hi\"\\\n")], f64::NAN);
        f.sample(&[("u", "a")], f64::INFINITY);
        f.sample(&[("u", "b")], f64::NEG_INFINITY);
        assert_eq!(
            out,
            "# HELP x a \\\\ b\\nc.\n# TYPE x gauge\n\
             x{u=\"say \\\"hi\\\"\\\\\\n\"} NaN\nx{u=\"a\"} +Inf\nx{u=\"b\"} -Inf\n"
        );
    }

    #[test]
    fn single_series_and_the_end_marker() {
        let mut out = String::new();
        single(&mut out, "x_up", Kind::Gauge, "Up", 1.0);
        finish(&mut out);
        assert_eq!(out, "# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# EOF\n");
    }
}
