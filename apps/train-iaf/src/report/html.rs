//! The report's HTML: tables, inlined pictures, no outside resource.

use super::RunFiles;
use crate::curves::nll_markers;
use crate::plots::{Panel, Scale, Series, render};
use anyhow::Result;
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn img(alt: &str, png: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    format!(
        "<img alt=\"{}\" src=\"data:image/png;base64,{data}\">",
        escape(alt)
    )
}

fn number(v: &Value, digits: usize) -> String {
    v.as_f64()
        .filter(|x| x.is_finite())
        .map_or("—".into(), |x| format!("{x:.digits$}"))
}

fn with_error(v: &Value, e: &Value) -> String {
    match (v.as_f64(), e.as_f64()) {
        (Some(v), Some(e)) if v.is_finite() => format!("{v:.3} ± {e:.3}"),
        (Some(v), _) if v.is_finite() => format!("{v:.3}"),
        _ => "—".into(),
    }
}

/// `a.b.c` → scalar text of a JSON object, for configuration tables.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;white-space:nowrap;\
text-align:right}th{background:#f0f0f0}td.k,th.k{text-align:left}img{max-width:100%;\
image-rendering:pixelated;border:1px solid #ddd;margin:4px 0}section{margin-top:28px}\
.pics{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}.pics figure{margin:0}\
figcaption{font-size:90%;color:#555}code{background:#f4f4f4;padding:1px 4px}";

/// Marks, once the page has loaded, every image as rendered or not (`data-rendered`) and
/// counts them on `<body>`, so that a headless browser's DOM dump tells.
const CHECK: &str = "window.addEventListener('load',()=>{const i=[...document.images];\
i.forEach(x=>x.dataset.rendered=(x.complete&&x.naturalWidth>0)?'yes':'no');\
document.body.dataset.images=i.length;\
document.body.dataset.rendered=i.filter(x=>x.dataset.rendered==='yes').length;});";

fn results_table(runs: &[RunFiles]) -> String {
    let mut t = String::from(
        "<table id=\"results\"><tr><th class=\"k\">run</th><th class=\"k\">preset</th>\
<th>epochs</th><th class=\"k\">weights</th><th>test −ELBO</th><th>IS NLL ± SE</th>\
<th>K</th><th>mean ESS</th><th>HAIS NLL ± SE</th><th>BDMC lower / upper (gap)</th>\
<th>training</th></tr>",
    );
    for run in runs {
        let r = run.results.clone().unwrap_or(Value::Null);
        let hais = &r["hais"];
        let bdmc = &r["bdmc"];
        let bdmc_text = match (bdmc["lower"].as_f64(), bdmc["upper"].as_f64()) {
            (Some(l), Some(u)) => format!("{l:.2} / {u:.2} ({:.2})", u - l),
            _ => "—".into(),
        };
        let epochs = r["epochs"]
            .as_u64()
            .or_else(|| run.metrics.last().map(|m| m.epoch))
            .map_or("—".into(), |e| e.to_string());
        let training = r["train_seconds"]
            .as_f64()
            .map_or("—".into(), |s| format!("{:.1} min", s / 60.0));
        let _ = write!(
            t,
            "<tr><td class=\"k\">{}</td><td class=\"k\">{}</td><td>{epochs}</td>\
<td class=\"k\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
<td>{training}</td></tr>",
            escape(&run.name()),
            escape(run.config["preset"].as_str().unwrap_or("?")),
            escape(r["weights"].as_str().unwrap_or("—")),
            number(&r["test_neg_elbo"], 3),
            with_error(&r["is_nll"], &r["is_std_error"]),
            r["is_samples"]
                .as_u64()
                .map_or("—".into(), |k| k.to_string()),
            number(&r["is_mean_ess"], 1),
            match hais["test_points"].as_u64() {
                Some(n) => format!(
                    "{} <small>({n} images)</small>",
                    with_error(&hais["nll"], &hais["std_error"])
                ),
                None => with_error(&hais["nll"], &hais["std_error"]),
            },
            escape(&bdmc_text),
        );
    }
    t.push_str("</table>");
    t
}

/// Rows of the configuration keys whose values differ between runs.
fn differences(runs: &[RunFiles]) -> String {
    let flat: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| {
            let mut m = BTreeMap::new();
            flatten("", &r.config, &mut m);
            m
        })
        .collect();
    let keys: std::collections::BTreeSet<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    let mut t = String::from("<table id=\"differences\"><tr><th class=\"k\">setting</th>");
    for run in runs {
        let _ = write!(t, "<th class=\"k\">{}</th>", escape(&run.name()));
    }
    t.push_str("</tr>");
    for key in keys {
        let values: Vec<&str> = flat
            .iter()
            .map(|m| m.get(key).map_or("—", String::as_str))
            .collect();
        if values.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        let _ = write!(t, "<tr><td class=\"k\">{}</td>", escape(key));
        for v in values {
            let _ = write!(t, "<td class=\"k\">{}</td>", escape(v));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// Test and training −ELBO of every run on shared axes, as a PNG.
fn overlaid_curves(runs: &[RunFiles]) -> Result<Vec<u8>> {
    let series = |f: fn(&crate::metrics::EpochMetrics) -> f64| -> Vec<Series> {
        runs.iter()
            .map(|r| Series {
                label: r.name(),
                points: r.metrics.iter().map(|m| (m.epoch as f64, f(m))).collect(),
            })
            .collect()
    };
    let panels = [
        Panel {
            title: "test −ELBO".into(),
            y_label: "nats per image".into(),
            scale: Scale::Linear,
            series: series(|m| m.test_neg_elbo),
            markers: vec![],
        },
        Panel {
            title: "training −ELBO (mean over the epoch's steps)".into(),
            y_label: "nats per image".into(),
            scale: Scale::Linear,
            series: series(|m| m.train_neg_elbo),
            markers: vec![],
        },
    ];
    let (w, h) = (1280, 480);
    let rgb = render("runs compared", &panels, w, h)?;
    crate::images::encode_png(w, h, png::ColorType::Rgb, &rgb)
}

fn run_section(run: &RunFiles, index: usize) -> Result<String> {
    let mut s = format!(
        "<section id=\"run-{index}\"><h2>{}</h2>",
        escape(&run.name())
    );
    if let Some(r) = &run.results {
        let markers = nll_markers(r);
        if !markers.is_empty() {
            s.push_str("<p>");
            let labels: Vec<String> = markers.iter().map(|m| escape(&m.label)).collect();
            s.push_str(&labels.join("; "));
            let _ = write!(
                s,
                " (nats, {} weights)</p>",
                escape(r["weights"].as_str().unwrap_or("?"))
            );
        }
    } else {
        s.push_str("<p>No results.json: training has not finished.</p>");
    }
    let mut pics = String::from("<div class=\"pics\">");
    for (name, png) in &run.pictures {
        let caption = match *name {
            "curves" => "learning curves",
            "samples" => "samples from the prior (Bernoulli means)",
            _ => "test images (top) and their reconstructions (bottom)",
        };
        let _ = write!(
            pics,
            "<figure>{}<figcaption>{caption}</figcaption></figure>",
            img(&format!("{name} of {}", run.name()), png)
        );
    }
    pics.push_str("</div>");
    s.push_str(&pics);
    if !run.evals.is_empty() {
        s.push_str("<h3>Evaluations</h3><ul>");
        for (name, v) in &run.evals {
            let _ = write!(
                s,
                "<li><code>{}</code>: IS {} · HAIS {} · BDMC gap {}</li>",
                escape(name),
                with_error(&v["is_nll"], &v["is_std_error"]),
                with_error(&v["hais"]["nll"], &v["hais"]["std_error"]),
                number(&v["bdmc"]["gap"], 3)
            );
        }
        s.push_str("</ul>");
    }
    let mut flat = BTreeMap::new();
    flatten("", &run.config, &mut flat);
    s.push_str("<details><summary>configuration</summary><table class=\"config\">");
    for (k, v) in &flat {
        let _ = write!(
            s,
            "<tr><td class=\"k\">{}</td><td class=\"k\">{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    s.push_str("</table></details></section>");
    Ok(s)
}

/// The whole page.
pub fn page(runs: &[RunFiles]) -> Result<String> {
    let title = match runs {
        [one] => format!("vaekit run {}", one.name()),
        _ => format!("vaekit: {} runs", runs.len()),
    };
    let mut s = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<style>{STYLE}</style><script>{CHECK}</script></head><body><h1>{}</h1>\
<p>Negative log-likelihoods in nats per test image (lower is better); ± is one standard \
error over the test images.</p><h2>Results</h2>",
        escape(&title),
        escape(&title)
    );
    s.push_str(&results_table(runs));
    if runs.len() > 1 {
        s.push_str("<h2>Compared</h2>");
        s.push_str(&img("overlaid curves", &overlaid_curves(runs)?));
        s.push_str("<h3>Settings that differ</h3>");
        s.push_str(&differences(runs));
    }
    for (i, run) in runs.iter().enumerate() {
        s.push_str(&run_section(run, i)?);
    }
    s.push_str("</body></html>\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn nested_configuration_flattens_to_dotted_keys() {
        let mut m = BTreeMap::new();
        flatten(
            "",
            &serde_json::json!({"a": {"b": 1, "c": "x"}, "d": null}),
            &mut m,
        );
        let got: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("a.b", "1"), ("a.c", "x"), ("d", "null")]);
    }
}
